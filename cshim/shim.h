/* The C side of libp11isolate.so: the exported function list, the fork
 * guard that runs before Go is ever entered, and the host's spawn. */
#ifndef P11ISOLATE_SHIM_H
#define P11ISOLATE_SHIM_H

#include <stdint.h>
#include <sys/types.h>
#include <p11-kit/pkcs11.h>

/* p11i_call guards against use in a forked child, then enters Go. */
CK_RV p11i_call(int id, uintptr_t *args);

/* Implemented in Go (proxy/): the call proper. */
extern CK_RV p11i_go_call(int id, uintptr_t *args);

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

/* What a process forked after the library was loaded needs to start a host
 * of its own without Go (child.c): set by the parent at each C_Initialize,
 * in C memory that is never freed while it is current. */
struct p11i_kit {
	int parent_initialized; /* the parent is between C_Initialize and C_Finalize */
	int exe_fd;             /* the verified host image (a sealed memfd, or the installed binary) */
	char **argv, **envp;    /* the host's, envp already filtered */
	struct p11i_sandbox sb; /* its lists in C memory */
	int64_t timeout_ns, keygen_ns;
	char *module, *module_sha256;
	uint64_t memory_limit;
	char *log_path; /* NULL: stderr */
	char *build_id;
	int protocol;
	/* The parent's C_Initialize arguments as its own hosts get them
	 * (NULL: the application passed NULL), replayed into the child's. */
	CK_C_INITIALIZE_ARGS *init_args;
};
void p11i_kit_set(struct p11i_kit *k);
CK_RV p11i_child_call(int id, uintptr_t *args);
/* p11i_child_reset runs in a new child; was_child: the parent was a forked
 * child itself (a fork of a fork). */
void p11i_child_reset(int was_child);
void p11i_handles_reset(void);

#endif
