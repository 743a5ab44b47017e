/* The C side of libp11isolate.so: the exported function list, the fork
 * guard that runs before Go is ever entered, and the host's spawn. */
#ifndef P11ISOLATE_SHIM_H
#define P11ISOLATE_SHIM_H

#include <stdint.h>
#include <sys/types.h>
#include "pkcs11_3x.h"
#include "flists_gen.h"

/* p11i_call makes every call: C_Initialize of the process that loaded the
 * library resolves its settings in Go, everything else runs in C
 * (supervise.c), which is all a forked child can run. */
CK_RV p11i_call(int id, int route, uintptr_t *args);

/* Implemented in Go (proxy/): C_Initialize up to the settings, and the
 * settings of a C_Initialize without pReserved (malloc'd plan; NULL:
 * logged). */
extern CK_RV p11i_go_initialize(uintptr_t *args);
extern void *p11i_go_plan(size_t *len);

extern CK_FUNCTION_LIST p11i_function_list;
extern const struct p11i_flist p11i_flist30_template, p11i_flist32_template;

/* The vendor's "PKCS 11" interfaces, as its host reported them at load
 * (supervise.c): p11i_sup_interfaces fills at most max of them in the
 * vendor's order, sets *def to the index of its default, and returns their
 * number; 0 when no host could load the module (the caller then offers
 * C_GetFunctionList's list alone). Before C_Initialize a host is started
 * for the question and ended. */
struct p11i_iface {
	unsigned char major, minor;
	CK_FLAGS flags;
};
#define P11I_MAX_IFACES 8
int p11i_sup_interfaces(struct p11i_iface *out, int max, int *def);
void p11i_interfaces_forked(void);

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

/* C_Initialize's arguments, read without faulting (supervise.c). */
struct p11i_init {
	int null;         /* the application passed NULL */
	CK_FLAGS flags;
	unsigned mutexes; /* bit i: the i-th mutex callback was set */
	char *reserved;   /* pReserved's string (malloc'd), NULL: none */
};
/* p11i_init_read returns CKR_OK or CKR_ARGUMENTS_BAD (logged). */
CK_RV p11i_init_read(const void *argp, struct p11i_init *in);
void p11i_init_free(struct p11i_init *in);

/* p11i_sup_initialize is the rest of C_Initialize in the process that
 * loaded the library, once Go made the plan (internal/plan, msgpack): it
 * builds the kit hosts start from and starts the first host. */
CK_RV p11i_sup_initialize(const void *plan, size_t len, const struct p11i_init *in, uintptr_t argp);
int p11i_sup_initialized(void);
/* p11i_sup_call is every other call, and every call in a forked child. */
CK_RV p11i_sup_call(int id, int route, uintptr_t *args);
/* p11i_sup_forked runs in a new child. */
void p11i_sup_forked(void);
void p11i_handles_reset(void);
void p11i_sessions_reset(void);
/* Whether this process is a child forked after the library was loaded. */
int p11i_forked_child(void);

/* The log (supervise.c): p11i_log_open points it at path (NULL: stderr),
 * -1 with errno when path cannot be opened; p11i_log writes one line. */
int p11i_log_open(const char *path);
void p11i_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The host image (image.c), embedded in the library at build time.
 * p11i_host_exe returns an fd of the verified host binary: a sealed memfd
 * of the embedded image, or (override, or where executable memfds are
 * refused, the binary beside the library) a file hashed through the fd that
 * will be executed; -1 with a one-line reason in err. */
int p11i_host_exe(const char *override, char *err, size_t errlen);

/* SHA-256 (sha256.c). */
struct p11i_sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t nbuf;
};
void p11i_sha256_init(struct p11i_sha256 *s);
void p11i_sha256_update(struct p11i_sha256 *s, const void *data, size_t n);
void p11i_sha256_final(struct p11i_sha256 *s, uint8_t out[32]);
/* p11i_sha256_fd writes the lower-case hex digest of fd's whole file. */
int p11i_sha256_fd(int fd, char hex[65]);

#endif
