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

/* Spawning the host (spawn.c). */
int p11i_memfd_image(const void *image, size_t len);
int p11i_spawn(int exe_fd, int ctl_fd, int log_fd, int null_fd,
	       char *const argv[], char *const envp[], int *pidfd, int *err);
int p11i_self_dir(char *buf, size_t len);

void p11i_log_write(int fd, const char *buf, size_t len);

#endif
