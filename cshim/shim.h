/* The C side of libp11isolate.so: the exported function list, the fork
 * guard that runs before Go is ever entered, and the host's spawn. */
#ifndef P11ISOLATE_SHIM_H
#define P11ISOLATE_SHIM_H

#include <stdint.h>
#include <sys/types.h>
#include <p11-kit/pkcs11.h>

/* p11i_call makes every call: C_Initialize of the process that loaded the
 * library resolves its settings in Go, everything else runs in C
 * (supervise.c), which is all a forked child can run. */
CK_RV p11i_call(int id, uintptr_t *args);

/* Implemented in Go (proxy/): C_Initialize up to the settings. */
extern CK_RV p11i_go_initialize(uintptr_t *args);

extern CK_FUNCTION_LIST p11i_function_list;

/* Channel fds the proxy opened: a forked child closes them without entering
 * Go, so it can never write into the parent's conversation with the host. */
void p11i_fd_register(int fd);
void p11i_fd_unregister(int fd);

/* Reading application memory the proxy interprets for itself (the
 * C_Initialize arguments and its pReserved string) without faulting where
 * the vendor, loaded directly, would not: p11i_copy_in copies n bytes and
 * returns 0, or -1 if any of them is unreadable; p11i_copy_string copies a
 * NUL-terminated string of fewer than max bytes and returns its length, -1
 * if it is unreadable, -2 if no NUL comes within max bytes. */
int p11i_copy_in(void *dst, const void *src, size_t n);
long p11i_copy_string(char *dst, const void *src, size_t max);

/* p11i_region_new makes a channel's shared region: a memfd of size bytes,
 * sealed against shrinking and growing before the host ever sees it (a host
 * that could shrink it would make the application's next touch past the
 * new end a SIGBUS), mapped here and kept from forked children. It returns
 * the mapping and *memfd, which the caller hands to the host and closes;
 * NULL with errno set on failure. */
void *p11i_region_new(size_t size, int *memfd);

/* Spawning the host (spawn.c). */
int p11i_memfd_image(const void *image, size_t len);
int p11i_self_dir(char *buf, size_t len);

/* The sandbox the host is spawned into (profiles and layers: README.md,
 * "Isolation"). Path lists are NULL-terminated; NULL means empty. */
enum { P11I_SANDBOX_OFF, P11I_SANDBOX_DEFAULT, P11I_SANDBOX_STRICT };

struct p11i_sandbox {
	int profile;             /* P11I_SANDBOX_* */
	int userns;              /* not root: namespaces need a user namespace */
	int drop_caps;           /* root: drop the capabilities that reach other processes */
	unsigned uid, gid;       /* mapped to themselves in the user namespace */
	int status_fd;           /* write end of the init's status pipe */
	char *const *argv_init;  /* the host's argv when it runs under its init */
	/* strict only: */
	char *const *ro_paths;     /* read and execute */
	char *const *rw_paths;     /* sandbox_paths: everything */
	char *const *dev_files;    /* device files opened for reading and writing */
	char *const *private_dirs; /* get a fresh tmpfs ("/tmp", "/dev/shm") */
	char *const *keep_paths;   /* under private_dirs, bind-mounted back */
};

/* Layers, bits of p11i_report.layers; err[layer] is the errno of a wanted
 * layer that could not be set up. */
enum {
	P11I_L_USERNS, P11I_L_PIDNS, P11I_L_MNTNS, P11I_L_NETNS, P11I_L_IPCNS,
	P11I_L_INIT, P11I_L_PROC, P11I_L_PRIVATE, P11I_L_CAPS, P11I_L_KEYRING,
	P11I_L_SECCOMP, P11I_L_LANDLOCK, P11I_L_LANDLOCK_FS, P11I_L_COUNT
};

struct p11i_report {
	unsigned layers;
	int landlock_abi;
	int err[P11I_L_COUNT];
};

int p11i_spawn(int exe_fd, int ctl_fd, int log_fd, int null_fd,
	       char *const argv[], char *const envp[], const struct p11i_sandbox *sb,
	       struct p11i_report *rep, int *pidfd, int *err);

void p11i_log_write(int fd, const char *buf, size_t len);

/* The settings a host is started with (supervise.c), resolved in Go at
 * C_Initialize (proxy/kit.go) and handed over whole: everything in C memory
 * that supervise.c owns from then on (p11i_kit_free). A forked child keeps
 * its parent's and starts hosts of its own with it. */
struct p11i_kit {
	int refs;               /* the settings in force, and each host started with them */
	int exe_fd;             /* the verified host image (a sealed memfd, or the installed binary) */
	char **argv, **envp;    /* the host's, envp already filtered */
	struct p11i_sandbox sb; /* its lists in C memory */
	unsigned wanted;        /* layers the profile asks for */
	char *sandbox_source;   /* where the sandbox setting came from, for the log */
	int env_passed, env_total;
	char *env_hint;         /* completes the log line of a vendor C_Initialize that failed ("") */
	int64_t timeout_ns, keygen_ns;
	char *module, *module_sha256;
	uint64_t memory_limit;
	int log_stderr; /* the log goes to stderr */
	char *build_id;
	int protocol;
	/* The application's C_Initialize arguments as every host gets them
	 * (NULL: the application passed NULL), pReserved included. */
	CK_C_INITIALIZE_ARGS *init_args;
};
void p11i_kit_free(struct p11i_kit *k);

/* p11i_sup_initialize is the rest of C_Initialize in the process that
 * loaded the library, once Go resolved the settings: it takes k (freeing
 * it when already initialized) and starts the first host. */
CK_RV p11i_sup_initialize(struct p11i_kit *k);
int p11i_sup_initialized(void);
/* p11i_sup_call is every other call, and every call in a forked child. */
CK_RV p11i_sup_call(int id, uintptr_t *args);
/* p11i_sup_forked runs in a new child. */
void p11i_sup_forked(void);
void p11i_handles_reset(void);
/* Whether this process is a child forked after the library was loaded. */
int p11i_forked_child(void);

/* The log (supervise.c): p11i_log_open points it at path (NULL: stderr),
 * -1 with errno when path cannot be opened; p11i_log writes one line. */
int p11i_log_open(const char *path);
void p11i_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
