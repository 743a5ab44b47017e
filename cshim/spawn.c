/* Starting the host: its image goes into a sealed memfd (or is opened from
 * disk), and a clone3 child execs it through that very fd with nothing of
 * the application but the channel, stdio and a clean signal state, inside
 * the sandbox the profile asks for (namespaces, Landlock, seccomp). */
#define _GNU_SOURCE
#include "shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

/* ------------------------------------------------------------------------
 * The sandbox. Everything from here to p11i_spawn runs in the clone3 child
 * before it execs the host: raw system calls only (other threads of the
 * application may have held libc locks when it was cloned), no malloc, all
 * paths prepared by the parent. A layer the kernel refuses is skipped and
 * reported (struct p11i_report); the parent decides whether that is fatal.
 * ---------------------------------------------------------------------- */

#ifndef CLONE_NEWUSER
#define CLONE_NEWUSER 0x10000000
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef KEYCTL_JOIN_SESSION_KEYRING
#define KEYCTL_JOIN_SESSION_KEYRING 1
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* Landlock, spelled out: Debian 12's <linux/landlock.h> predates the
 * network rules (ABI 4), device ioctls (ABI 5) and scopes (ABI 6). */
#define P11I_LL_CREATE_RULESET_VERSION (1U << 0)
#define P11I_LL_RULE_PATH_BENEATH 1
#define P11I_LL_FS_EXECUTE (1ULL << 0)
#define P11I_LL_FS_WRITE_FILE (1ULL << 1)
#define P11I_LL_FS_READ_FILE (1ULL << 2)
#define P11I_LL_FS_READ_DIR (1ULL << 3)
#define P11I_LL_FS_MAKE_BLOCK (1ULL << 11)
#define P11I_LL_FS_ABI1 ((1ULL << 13) - 1) /* EXECUTE .. MAKE_SYM */
#define P11I_LL_FS_REFER (1ULL << 13)      /* ABI 2 */
#define P11I_LL_FS_TRUNCATE (1ULL << 14)   /* ABI 3 */
#define P11I_LL_FS_IOCTL_DEV (1ULL << 15)  /* ABI 5 */
#define P11I_LL_NET_BIND_TCP (1ULL << 0)   /* ABI 4 */
#define P11I_LL_NET_CONNECT_TCP (1ULL << 1)
#define P11I_LL_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* ABI 6 */
#define P11I_LL_SCOPE_SIGNAL (1ULL << 1)
#define P11I_LL_FILE_RIGHTS                                                    \
	(P11I_LL_FS_EXECUTE | P11I_LL_FS_WRITE_FILE | P11I_LL_FS_READ_FILE |   \
	 P11I_LL_FS_TRUNCATE | P11I_LL_FS_IOCTL_DEV)
#define P11I_LL_RO (P11I_LL_FS_EXECUTE | P11I_LL_FS_READ_FILE | P11I_LL_FS_READ_DIR)

struct p11i_ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

struct p11i_ll_path_beneath {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

/* What the child needs, gathered by the parent before clone3. */
struct p11i_child_args {
	int exe_fd, ctl_fd, log_fd, null_fd;
	char *const *argv, *const *envp;
	const struct p11i_sandbox *sb;
	unsigned long nsflags; /* namespaces clone3 created */
	int sync_r, sync_w;    /* user namespace: the parent wrote the maps */
	int rep_w;             /* the report goes here before exec */
	struct p11i_report rep;
};

static void p11i_layer(struct p11i_report *r, int layer, long rc)
{
	if (rc >= 0)
		r->layers |= 1U << layer;
	else if (r->err[layer] == 0)
		r->err[layer] = errno ? errno : EINVAL;
}

static int p11i_has(const struct p11i_report *r, int layer)
{
	return (r->layers >> layer) & 1;
}

static size_t p11i_strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

/* p11i_under reports whether path is dir or lies beneath it. */
static int p11i_under(const char *path, const char *dir)
{
	size_t n = p11i_strlen(dir);
	for (size_t i = 0; i < n; i++) {
		if (path[i] != dir[i])
			return 0;
	}
	return path[n] == '\0' || path[n] == '/';
}

/* p11i_mkdirs creates path and its missing parents (a directory, or an
 * empty file as the last component when !dir) as mount points. */
static int p11i_mkdirs(const char *path, int dir)
{
	char buf[PATH_MAX];
	size_t n = p11i_strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (i == n && !dir) {
			long fd = syscall(SYS_openat, AT_FDCWD, buf, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
			if (fd < 0)
				return -1;
			syscall(SYS_close, fd);
		} else if (syscall(SYS_mkdirat, AT_FDCWD, buf, 0700) != 0 && errno != EEXIST) {
			return -1;
		}
		if (i < n)
			buf[i] = '/';
	}
	return 0;
}

/* p11i_private_dir puts a fresh tmpfs on dir, with the keep_paths beneath
 * it bind-mounted back in place (their trees are cloned first, while they
 * are still reachable). */
static long p11i_private_dir(const char *dir, char *const *keep)
{
	int trees[16];
	const char *where[16];
	int n = 0;
	long rc = 0;

	for (; keep != NULL && *keep != NULL; keep++) {
		if (!p11i_under(*keep, dir) || p11i_strlen(*keep) == p11i_strlen(dir))
			continue;
		if (n == 16) {
			errno = E2BIG;
			rc = -1;
			break;
		}
		long t = syscall(SYS_open_tree, AT_FDCWD, *keep, OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE);
		if (t < 0) {
			rc = -1;
			break;
		}
		trees[n] = (int)t;
		where[n++] = *keep;
	}
	if (rc == 0)
		rc = syscall(SYS_mount, "tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	for (int i = 0; i < n; i++) {
		struct stat st;
		if (rc == 0 && syscall(SYS_fstat, trees[i], &st) != 0)
			rc = -1;
		if (rc == 0 && p11i_mkdirs(where[i], S_ISDIR(st.st_mode)) != 0)
			rc = -1;
		if (rc == 0)
			rc = syscall(SYS_move_mount, trees[i], "", AT_FDCWD, where[i], MOVE_MOUNT_F_EMPTY_PATH);
		syscall(SYS_close, trees[i]);
	}
	return rc;
}

/* p11i_mounts sets up the new mount namespace: nothing propagates back
 * (mounts made outside later still show inside), a /proc of the new pid
 * namespace, and (strict) private temporary dirs. */
static void p11i_mounts(struct p11i_child_args *a)
{
	const struct p11i_sandbox *sb = a->sb;
	struct p11i_report *r = &a->rep;

	if (syscall(SYS_mount, NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) {
		/* Anything mounted now would show in the application's
		 * namespace too: mount nothing. */
		r->layers &= ~(1U << P11I_L_MNTNS);
		p11i_layer(r, P11I_L_MNTNS, -1);
		return;
	}
	if (a->nsflags & CLONE_NEWPID)
		p11i_layer(r, P11I_L_PROC,
			   syscall(SYS_mount, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
	if (sb->profile == P11I_SANDBOX_STRICT && sb->private_dirs != NULL && *sb->private_dirs != NULL) {
		long rc = 0;
		for (char *const *d = sb->private_dirs; *d != NULL; d++) {
			if (p11i_private_dir(*d, sb->keep_paths) != 0)
				rc = -1;
		}
		p11i_layer(r, P11I_L_PRIVATE, rc);
	}
}

/* Capabilities that reach into other processes or the kernel: a vendor
 * module running as root keeps the rest (file access, devices). */
static void p11i_drop_caps(struct p11i_report *r)
{
	static const int caps[] = {
		2 /* CAP_DAC_READ_SEARCH: open_by_handle_at */, 5 /* CAP_KILL */,
		16 /* CAP_SYS_MODULE */, 17 /* CAP_SYS_RAWIO: /proc/kcore, /dev/mem */,
		19 /* CAP_SYS_PTRACE */, 38 /* CAP_PERFMON */, 39 /* CAP_BPF */,
	};
	long rc = 0;

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		if (syscall(SYS_prctl, PR_CAPBSET_DROP, caps[i], 0, 0, 0) != 0 && errno != EINVAL)
			rc = -1;
	}
	p11i_layer(r, P11I_L_CAPS, rc);
}

static int p11i_ll_rule(int ruleset, const char *path, int fd, uint64_t access, uint64_t handled)
{
	struct p11i_ll_path_beneath pb;
	struct stat st;
	int own = 0;
	long rc;

	if (fd < 0) {
		fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_PATH | O_CLOEXEC);
		if (fd < 0)
			return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
		own = 1;
	}
	if (syscall(SYS_fstat, fd, &st) == 0 && !S_ISDIR(st.st_mode))
		access &= P11I_LL_FILE_RIGHTS;
	pb.allowed_access = access & handled;
	pb.parent_fd = fd;
	rc = pb.allowed_access == 0 ? 0 : syscall(SYS_landlock_add_rule, ruleset, P11I_LL_RULE_PATH_BENEATH, &pb, 0);
	if (rc != 0 && !own && errno == EBADFD)
		rc = 0; /* a memfd: exec'ing it needs no rule */
	if (own)
		syscall(SYS_close, fd);
	return rc == 0 ? 0 : -1;
}

static int p11i_ll_rules(int ruleset, char *const *paths, uint64_t access, uint64_t handled)
{
	int rc = 0;
	for (; paths != NULL && *paths != NULL; paths++) {
		if (p11i_ll_rule(ruleset, *paths, -1, access, handled) != 0)
			rc = -1;
	}
	return rc;
}

/* p11i_landlock puts the host in a Landlock domain. Any domain keeps it
 * from ptrace, /proc/PID/mem and the like of processes outside it; the
 * default profile adds the signal scope (ABI 6), strict the filesystem
 * allowlist, no TCP (ABI 4) and no abstract unix sockets outside. */
static void p11i_landlock(struct p11i_child_args *a)
{
	const struct p11i_sandbox *sb = a->sb;
	struct p11i_report *r = &a->rep;
	struct p11i_ll_ruleset_attr attr;
	size_t size = sizeof(attr.handled_access_fs);
	long abi, ruleset;
	int strict = sb->profile == P11I_SANDBOX_STRICT, rules = 0;

	abi = syscall(SYS_landlock_create_ruleset, NULL, 0, P11I_LL_CREATE_RULESET_VERSION);
	if (abi < 1) {
		p11i_layer(r, P11I_L_LANDLOCK, -1);
		if (strict)
			p11i_layer(r, P11I_L_LANDLOCK_FS, -1);
		return;
	}
	r->landlock_abi = (int)abi;
	memset(&attr, 0, sizeof(attr));
	if (strict) {
		attr.handled_access_fs = P11I_LL_FS_ABI1;
		if (abi >= 2)
			attr.handled_access_fs |= P11I_LL_FS_REFER;
		if (abi >= 3)
			attr.handled_access_fs |= P11I_LL_FS_TRUNCATE;
		if (abi >= 5)
			attr.handled_access_fs |= P11I_LL_FS_IOCTL_DEV;
		if (abi >= 4) {
			attr.handled_access_net = P11I_LL_NET_BIND_TCP | P11I_LL_NET_CONNECT_TCP;
			size = 2 * sizeof(uint64_t);
		}
		if (abi >= 6) {
			attr.scoped = P11I_LL_SCOPE_SIGNAL | P11I_LL_SCOPE_ABSTRACT_UNIX;
			size = sizeof(attr);
		}
	} else if (abi >= 6) {
		attr.scoped = P11I_LL_SCOPE_SIGNAL;
		size = sizeof(attr);
	} else {
		/* Before scopes, a domain needs a handled right: making block
		 * devices, which the host never needs, stays denied. */
		attr.handled_access_fs = P11I_LL_FS_MAKE_BLOCK;
	}
	ruleset = syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (ruleset < 0) {
		p11i_layer(r, P11I_L_LANDLOCK, -1);
		if (strict)
			p11i_layer(r, P11I_L_LANDLOCK_FS, -1);
		return;
	}
	if (strict) {
		uint64_t fs = attr.handled_access_fs;
		rules |= p11i_ll_rules((int)ruleset, sb->ro_paths, P11I_LL_RO, fs);
		rules |= p11i_ll_rules((int)ruleset, sb->rw_paths, fs, fs);
		rules |= p11i_ll_rules((int)ruleset, sb->dev_files,
				       P11I_LL_FS_READ_FILE | P11I_LL_FS_WRITE_FILE |
					       P11I_LL_FS_TRUNCATE | P11I_LL_FS_IOCTL_DEV,
				       fs);
		rules |= p11i_ll_rule((int)ruleset, "/dev", -1, P11I_LL_FS_READ_DIR, fs);
		if (p11i_has(r, P11I_L_PRIVATE))
			rules |= p11i_ll_rules((int)ruleset, sb->private_dirs, fs, fs);
		if (p11i_has(r, P11I_L_PROC)) /* this namespace's own /proc */
			rules |= p11i_ll_rule((int)ruleset, "/proc", -1, P11I_LL_FS_READ_FILE | P11I_LL_FS_READ_DIR, fs);
		/* The host image on disk (memfds need no rule). */
		rules |= p11i_ll_rule((int)ruleset, NULL, a->exe_fd, P11I_LL_FS_EXECUTE | P11I_LL_FS_READ_FILE, fs);
	}
	if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) {
		p11i_layer(r, P11I_L_LANDLOCK, -1);
		if (strict)
			p11i_layer(r, P11I_L_LANDLOCK_FS, -1);
	} else {
		p11i_layer(r, P11I_L_LANDLOCK, 0);
		if (strict)
			p11i_layer(r, P11I_L_LANDLOCK_FS, rules);
	}
	syscall(SYS_close, ruleset);
}

/* ---- seccomp ---------------------------------------------------------- */

#if defined(__x86_64__)
#define P11I_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define P11I_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define P11I_ARG_LO(n) (offsetof(struct seccomp_data, args) + 8 * (n))
#else
#define P11I_ARG_LO(n) (offsetof(struct seccomp_data, args) + 8 * (n) + 4)
#endif

struct p11i_bpf {
	struct sock_filter ins[160];
	unsigned n;
	int overflow;
};

static void p11i_emit(struct p11i_bpf *b, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
	if (b->n == sizeof(b->ins) / sizeof(b->ins[0])) {
		b->overflow = 1;
		return;
	}
	b->ins[b->n].code = code;
	b->ins[b->n].jt = jt;
	b->ins[b->n].jf = jf;
	b->ins[b->n].k = k;
	b->n++;
}

#define P11I_EPERM (SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))

/* The accumulator holds the syscall number between rules. */
static void p11i_deny(struct p11i_bpf *b, long nr)
{
	p11i_emit(b, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1);
	p11i_emit(b, BPF_RET | BPF_K, P11I_EPERM, 0, 0);
}

/* p11i_allow_only: syscall nr is allowed only when the low 32 bits of
 * argument arg (a pid_t) are one of v[0..k-1]; otherwise EPERM. */
static void p11i_allow_only(struct p11i_bpf *b, long nr, int arg, const uint32_t *v, unsigned k)
{
	p11i_emit(b, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, (uint8_t)(k + 3));
	p11i_emit(b, BPF_LD | BPF_W | BPF_ABS, P11I_ARG_LO(arg), 0, 0);
	for (unsigned i = 0; i < k; i++)
		p11i_emit(b, BPF_JMP | BPF_JEQ | BPF_K, v[i], (uint8_t)(k - i), 0);
	p11i_emit(b, BPF_RET | BPF_K, P11I_EPERM, 0, 0);
	p11i_emit(b, BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
}

/* p11i_deny_arg: syscall nr gets EPERM when argument arg's low 32 bits are v. */
static void p11i_deny_arg(struct p11i_bpf *b, long nr, int arg, uint32_t v)
{
	p11i_emit(b, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 4);
	p11i_emit(b, BPF_LD | BPF_W | BPF_ABS, P11I_ARG_LO(arg), 0, 0);
	p11i_emit(b, BPF_JMP | BPF_JEQ | BPF_K, v, 0, 1);
	p11i_emit(b, BPF_RET | BPF_K, P11I_EPERM, 0, 0);
	p11i_emit(b, BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
}

/* p11i_seccomp installs the filter: nothing that reads, writes or compares
 * another process's memory or fds, no signal to any process but the host
 * itself (self is the host's pid as the host sees it), no mount changes
 * that could uncover the application's /proc, no kernel code. */
static void p11i_seccomp(struct p11i_report *r, uint32_t self)
{
#ifdef P11I_AUDIT_ARCH
	static const long denied[] = {
		SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev, SYS_pidfd_getfd,
		SYS_pidfd_send_signal, SYS_kcmp, SYS_process_madvise, SYS_process_mrelease,
		SYS_perf_event_open, SYS_bpf, SYS_open_by_handle_at,
		SYS_mount, SYS_umount2, SYS_pivot_root, SYS_move_mount, SYS_open_tree,
		SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick, SYS_mount_setattr, SYS_setns,
		SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_kexec_load,
		SYS_kexec_file_load,
#ifdef SYS_iopl
		SYS_iopl, SYS_ioperm,
#endif
	};
	const uint32_t kill_ok[] = { self, 0, (uint32_t)-(int32_t)self };
	const uint32_t self_ok[] = { self };
	const uint32_t self_or_zero[] = { self, 0 };
	struct p11i_bpf b;
	struct sock_fprog prog;

	b.n = 0;
	b.overflow = 0;
	p11i_emit(&b, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), 0, 0);
	p11i_emit(&b, BPF_JMP | BPF_JEQ | BPF_K, P11I_AUDIT_ARCH, 1, 0);
	p11i_emit(&b, BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS, 0, 0);
	p11i_emit(&b, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0);
#ifdef __x86_64__
	/* x32 system calls: the same numbers with bit 30 set. */
	p11i_emit(&b, BPF_JMP | BPF_JGE | BPF_K, 0x40000000U, 0, 1);
	p11i_emit(&b, BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS, 0, 0);
#endif
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++)
		p11i_deny(&b, denied[i]);
	p11i_allow_only(&b, SYS_kill, 0, kill_ok, 3);
	p11i_allow_only(&b, SYS_tgkill, 0, self_ok, 1);
	p11i_allow_only(&b, SYS_tkill, 0, self_ok, 1);
	p11i_allow_only(&b, SYS_rt_sigqueueinfo, 0, self_ok, 1);
	p11i_allow_only(&b, SYS_rt_tgsigqueueinfo, 0, self_ok, 1);
	p11i_allow_only(&b, SYS_prlimit64, 0, self_or_zero, 2);
	p11i_allow_only(&b, SYS_move_pages, 0, self_or_zero, 2);
	p11i_allow_only(&b, SYS_migrate_pages, 0, self_or_zero, 2);
	p11i_allow_only(&b, SYS_get_robust_list, 0, self_or_zero, 2);
	/* Typing into the application's terminal. */
	p11i_deny_arg(&b, SYS_ioctl, 1, TIOCSTI);
	p11i_emit(&b, BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
	if (b.overflow) {
		errno = E2BIG;
		p11i_layer(r, P11I_L_SECCOMP, -1);
		return;
	}
	prog.len = (unsigned short)b.n;
	prog.filter = b.ins;
	if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		p11i_layer(r, P11I_L_SECCOMP, -1);
		return;
	}
	p11i_layer(r, P11I_L_SECCOMP, syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
#else
	(void)self;
	errno = ENOSYS; /* no filter written for this architecture */
	p11i_layer(r, P11I_L_SECCOMP, -1);
#endif
}

/* Moves fd to a number at or above 10, so the dup2s into 0-5 below cannot
 * clobber a source that happens to be small. */
static int p11i_high(int fd)
{
	return (int)syscall(SYS_fcntl, fd, F_DUPFD, 10);
}

static void p11i_child(struct p11i_child_args *a)
{
	const struct p11i_sandbox *sb = a->sb;
	struct p11i_report *r = &a->rep;
	int exe_fd, ctl_fd, log_fd, null_fd, status_fd = -1, init;
	char *const *argv = a->argv;
	struct sigaction dfl;
	sigset_t none;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < 65; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
	}
	sigemptyset(&none);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, 8);

	if (a->nsflags & CLONE_NEWUSER) {
		/* Wait for the parent to write our uid and gid maps. */
		char go = 0;
		syscall(SYS_close, a->sync_w);
		while (syscall(SYS_read, a->sync_r, &go, 1) < 0 && errno == EINTR)
			;
		if (go != 'g')
			syscall(SYS_exit_group, 125);
		syscall(SYS_close, a->sync_r);
		r->layers |= 1U << P11I_L_USERNS;
	}
	if (a->nsflags & CLONE_NEWPID)
		r->layers |= 1U << P11I_L_PIDNS;
	if (a->nsflags & CLONE_NEWNET)
		r->layers |= 1U << P11I_L_NETNS;
	if (a->nsflags & CLONE_NEWIPC)
		r->layers |= 1U << P11I_L_IPCNS;
	/* The host leads a session of its own: whatever the vendor forks can
	 * be killed with its process group, the terminal's ^C reaches only the
	 * application (which then closes the channel), and the vendor has no
	 * controlling terminal to type into. */
	if (syscall(SYS_setsid) < 0)
		syscall(SYS_setpgid, 0, 0);
	if (sb->profile != P11I_SANDBOX_OFF) {
		/* The application's session keyring stays behind. */
		p11i_layer(r, P11I_L_KEYRING, syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0));
		if (a->nsflags & CLONE_NEWNS) {
			r->layers |= 1U << P11I_L_MNTNS;
			p11i_mounts(a);
		}
		if (sb->drop_caps)
			p11i_drop_caps(r);
		p11i_landlock(a);
	}
	/* In a new pid namespace the exec'd image is the namespace's init:
	 * it forks the host proper as pid 2 and reaps (see host/host.c). */
	init = (a->nsflags & CLONE_NEWPID) && sb->argv_init != NULL && sb->status_fd >= 0;
	if (sb->profile != P11I_SANDBOX_OFF)
		p11i_seccomp(r, init ? 2 : (uint32_t)syscall(SYS_getpid));
	if (init)
		r->layers |= 1U << P11I_L_INIT;

	while (syscall(SYS_write, a->rep_w, r, sizeof(*r)) < 0 && errno == EINTR)
		;
	syscall(SYS_close, a->rep_w);

	exe_fd = p11i_high(a->exe_fd);
	ctl_fd = p11i_high(a->ctl_fd);
	log_fd = p11i_high(a->log_fd);
	null_fd = p11i_high(a->null_fd);
	if (init)
		status_fd = p11i_high(sb->status_fd);
	if (exe_fd < 0 || ctl_fd < 0 || log_fd < 0 || null_fd < 0 || (init && status_fd < 0))
		syscall(SYS_exit_group, 126);
	syscall(SYS_dup2, null_fd, 0);
	syscall(SYS_dup2, log_fd, 1);
	syscall(SYS_dup2, log_fd, 2);
	syscall(SYS_dup2, ctl_fd, 3);
	if (init) {
		syscall(SYS_dup2, status_fd, 4);
		syscall(SYS_dup3, exe_fd, 5, O_CLOEXEC);
		syscall(SYS_close_range, 6, ~0U, 0);
		argv = sb->argv_init;
		syscall(SYS_execveat, 5, "", argv, a->envp, AT_EMPTY_PATH);
	} else {
		syscall(SYS_dup3, exe_fd, 4, O_CLOEXEC);
		syscall(SYS_close_range, 5, ~0U, 0);
		syscall(SYS_execveat, 4, "", argv, a->envp, AT_EMPTY_PATH);
	}
	syscall(SYS_exit_group, 127);
}

/* p11i_write_maps maps the application's uid and gid to themselves in the
 * child's new user namespace. */
static int p11i_write_maps(long pid, unsigned uid, unsigned gid)
{
	static const char *const files[] = { "setgroups", "uid_map", "gid_map" };
	char path[64], line[64];

	for (int i = 0; i < 3; i++) {
		int fd, n;
		ssize_t w;
		snprintf(path, sizeof(path), "/proc/%ld/%s", pid, files[i]);
		if (i == 0)
			n = snprintf(line, sizeof(line), "deny");
		else
			n = snprintf(line, sizeof(line), "%u %u 1\n", i == 1 ? uid : gid, i == 1 ? uid : gid);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -1;
		w = write(fd, line, (size_t)n);
		int e = errno;
		close(fd);
		if (w != n) {
			errno = w < 0 ? e : EIO;
			return -1;
		}
	}
	return 0;
}

static long p11i_clone(struct p11i_child_args *a, int *pidfd)
{
	struct clone_args args;
	long pid;

	memset(&args, 0, sizeof(args));
	args.flags = CLONE_PIDFD | a->nsflags;
	args.pidfd = (uintptr_t)pidfd;
	args.exit_signal = SIGCHLD;
	pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0 && errno == ENOSYS) {
		/* Docker's default seccomp profile answers clone3 so; clone
		 * takes the same flags and returns the pidfd in parent_tid. */
		pid = syscall(SYS_clone, CLONE_PIDFD | a->nsflags | SIGCHLD, NULL, pidfd, NULL, 0);
	}
	if (pid == 0)
		p11i_child(a); /* never returns */
	return pid;
}

static void p11i_close_pair(int p[2])
{
	for (int i = 0; i < 2; i++) {
		if (p[i] >= 0)
			close(p[i]);
		p[i] = -1;
	}
}

/* p11i_spawn starts the host in the sandbox sb asks for and returns its pid
 * (in a new pid namespace: its init's), with a pidfd in *pidfd and in *rep
 * the layers set up; on failure -1 with the errno in *err. Namespaces the
 * kernel refuses are left out (rep->err says why). */
int p11i_spawn(int exe_fd, int ctl_fd, int log_fd, int null_fd,
	       char *const argv[], char *const envp[], const struct p11i_sandbox *sb,
	       struct p11i_report *rep, int *pidfd, int *err)
{
	struct p11i_child_args a;
	int rep_p[2] = { -1, -1 }, sync_p[2] = { -1, -1 }, ns_err = 0;
	long pid = -1;
	size_t got = 0;

	memset(rep, 0, sizeof(*rep));
	memset(&a, 0, sizeof(a));
	a.exe_fd = exe_fd;
	a.ctl_fd = ctl_fd;
	a.log_fd = log_fd;
	a.null_fd = null_fd;
	a.argv = argv;
	a.envp = envp;
	a.sb = sb;
	if (sb->profile != P11I_SANDBOX_OFF) {
		a.nsflags = CLONE_NEWPID | CLONE_NEWNS;
		if (sb->profile == P11I_SANDBOX_STRICT)
			a.nsflags |= CLONE_NEWNET | CLONE_NEWIPC;
		if (sb->userns)
			a.nsflags |= CLONE_NEWUSER;
	}
	for (int attempt = 0; attempt < 2 && pid < 0; attempt++) {
		if (pipe2(rep_p, O_CLOEXEC) != 0 ||
		    ((a.nsflags & CLONE_NEWUSER) && pipe2(sync_p, O_CLOEXEC) != 0)) {
			*err = errno;
			p11i_close_pair(rep_p);
			return -1;
		}
		a.rep_w = rep_p[1];
		a.sync_r = sync_p[0];
		a.sync_w = sync_p[1];
		pid = p11i_clone(&a, pidfd);
		if (pid < 0) {
			*err = errno;
		} else if (a.nsflags & CLONE_NEWUSER) {
			close(sync_p[0]);
			sync_p[0] = -1;
			if (p11i_write_maps(pid, sb->uid, sb->gid) != 0) {
				siginfo_t info;
				ns_err = errno;
				syscall(SYS_pidfd_send_signal, *pidfd, SIGKILL, NULL, 0);
				waitid((idtype_t)P_PIDFD, (id_t)*pidfd, &info, WEXITED);
				close(*pidfd);
				pid = -1;
			} else if (write(sync_p[1], "g", 1) != 1) {
				*err = errno;
				p11i_close_pair(sync_p);
				p11i_close_pair(rep_p);
				return (int)pid; /* the child exits; the handshake reports it */
			}
		}
		p11i_close_pair(sync_p);
		if (pid < 0) {
			if (ns_err == 0)
				ns_err = *err;
			p11i_close_pair(rep_p);
			if (a.nsflags == 0)
				return -1;
			a.nsflags = 0; /* again, without namespaces */
		}
	}
	close(rep_p[1]);
	while (got < sizeof(*rep)) {
		ssize_t n = read(rep_p[0], (char *)rep + got, sizeof(*rep) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(rep_p[0]);
	if (got != sizeof(*rep))
		memset(rep, 0, sizeof(*rep)); /* the child died before its report */
	if (ns_err != 0) {
		for (int l = P11I_L_USERNS; l <= P11I_L_PRIVATE; l++)
			rep->err[l] = ns_err;
	}
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
