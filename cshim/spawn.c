/* Starting the host: its image goes into a sealed memfd (or is opened from
 * disk), and a clone3 child execs it through that very fd with nothing of
 * the application but the channel, stdio and a clean signal state. */
#define _GNU_SOURCE
#include "shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

/* p11i_memfd_image returns a sealed, executable memfd holding image, or -1
 * with errno set (EACCES when the system refuses executable memfds). */
int p11i_memfd_image(const void *image, size_t len)
{
	const char *p = image;
	int fd;

	fd = memfd_create("p11isolate-host", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (fd < 0 && errno == EINVAL) /* kernels before 6.3 know no MFD_EXEC */
		fd = memfd_create("p11isolate-host", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Moves fd to a number at or above 10, so the dup2s into 0-4 below cannot
 * clobber a source that happens to be small. */
static int p11i_high(int fd)
{
	return (int)syscall(SYS_fcntl, fd, F_DUPFD, 10);
}

static void p11i_child(int exe_fd, int ctl_fd, int log_fd, int null_fd,
		       char *const argv[], char *const envp[])
{
	struct sigaction dfl;
	sigset_t none;

	/* Only raw system calls from here on: other threads of the
	 * application may have held libc locks when we were cloned. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < 65; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
	}
	sigemptyset(&none);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);
	/* The host leads a process group of its own: whatever the vendor
	 * forks can be killed with it, and the terminal's ^C reaches only the
	 * application, which then closes the channel. */
	syscall(SYS_setpgid, 0, 0);

	exe_fd = p11i_high(exe_fd);
	ctl_fd = p11i_high(ctl_fd);
	log_fd = p11i_high(log_fd);
	null_fd = p11i_high(null_fd);
	if (exe_fd < 0 || ctl_fd < 0 || log_fd < 0 || null_fd < 0)
		syscall(SYS_exit_group, 126);
	syscall(SYS_dup2, null_fd, 0);
	syscall(SYS_dup2, log_fd, 1);
	syscall(SYS_dup2, log_fd, 2);
	syscall(SYS_dup2, ctl_fd, 3);
	syscall(SYS_dup3, exe_fd, 4, O_CLOEXEC);
	syscall(SYS_close_range, 5, ~0U, 0);
	syscall(SYS_execveat, 4, "", argv, envp, AT_EMPTY_PATH);
	syscall(SYS_exit_group, 127);
}

/* p11i_spawn starts the host and returns its pid, with a pidfd in *pidfd;
 * on failure -1 with the errno in *err. */
int p11i_spawn(int exe_fd, int ctl_fd, int log_fd, int null_fd,
	       char *const argv[], char *const envp[], int *pidfd, int *err)
{
	struct clone_args args;
	long pid;

	memset(&args, 0, sizeof(args));
	args.flags = CLONE_PIDFD;
	args.pidfd = (uintptr_t)pidfd;
	args.exit_signal = SIGCHLD;
	pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0) {
		*err = errno;
		return -1;
	}
	if (pid == 0)
		p11i_child(exe_fd, ctl_fd, log_fd, null_fd, argv, envp);
	return (int)pid;
}

/* p11i_self_dir writes the directory this library was loaded from. */
int p11i_self_dir(char *buf, size_t len)
{
	Dl_info info;
	const char *slash;
	size_t n;

	if (dladdr((void *)p11i_self_dir, &info) == 0 || info.dli_fname == NULL)
		return -1;
	slash = strrchr(info.dli_fname, '/');
	if (slash == NULL)
		return -1;
	n = (size_t)(slash - info.dli_fname);
	if (n + 1 > len)
		return -1;
	memcpy(buf, info.dli_fname, n);
	buf[n] = '\0';
	return 0;
}
