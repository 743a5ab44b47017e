#define _GNU_SOURCE
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

/* The process the library was initialized in. A child made by fork() must
 * never enter Go: the Go runtime's threads did not survive the fork and the
 * first call would deadlock. pthread_atfork catches fork(); the pid check
 * catches raw clone() and vfork-style paths that skip the handlers. */
static pid_t p11i_pid;
static atomic_int p11i_forked;

#define P11I_MAX_FDS 1024
static atomic_int p11i_fds[P11I_MAX_FDS];

void p11i_fd_register(int fd)
{
	for (int i = 0; i < P11I_MAX_FDS; i++) {
		int empty = 0;
		if (atomic_compare_exchange_strong(&p11i_fds[i], &empty, fd + 1))
			return;
	}
}

void p11i_fd_unregister(int fd)
{
	for (int i = 0; i < P11I_MAX_FDS; i++) {
		int want = fd + 1;
		if (atomic_compare_exchange_strong(&p11i_fds[i], &want, 0))
			return;
	}
}

static void p11i_after_fork_child(void)
{
	atomic_store(&p11i_forked, 1);

	for (int i = 0; i < P11I_MAX_FDS; i++) {
		int v = atomic_exchange(&p11i_fds[i], 0);
		if (v > 0)
			close(v - 1);
	}
	p11i_handles_reset();
	p11i_sessions_reset();
	p11i_interfaces_forked();
	p11i_sup_forked();
}

__attribute__((constructor)) static void p11i_load(void)
{
	p11i_pid = getpid();
	pthread_atfork(NULL, NULL, p11i_after_fork_child);
}

int p11i_forked_child(void)
{
	return atomic_load(&p11i_forked) || getpid() != p11i_pid;
}

CK_RV p11i_call(int id, int route, uintptr_t *args)
{
	if (id == 0 && !p11i_forked_child())
		return p11i_go_initialize(args);
	return p11i_sup_call(id, route, args);
}

/* Answered here, without entering Go: applications call it before anything
 * else, sometimes right after fork. */
static CK_RV p11i_C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	*list = &p11i_function_list;
	return CKR_OK;
}
CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) __attribute__((alias("p11i_C_GetFunctionList")));

/* ------------------------------------------------------------------ */
/* Interfaces (PKCS#11 3.0)                                            */

/* What C_GetInterfaceList and C_GetInterface hand out: one function list
 * per version the vendor offers (its version field is the vendor's), one
 * CK_INTERFACE per version and flags. Applications keep these pointers, so
 * entries are only ever added. Only "PKCS 11" interfaces are offered: a
 * vendor-defined interface's function table has a layout only its vendor
 * knows, so the proxy cannot carry its calls. */
static CK_UTF8CHAR p11i_iface_name[] = "PKCS 11";

#define MAX_OFFERED (4 * P11I_MAX_IFACES)
static struct {
	pthread_mutex_t mu;
	struct p11i_flist lists[MAX_OFFERED];
	int nlists;
	CK_INTERFACE ifaces[MAX_OFFERED];
	int nifaces;
} offered = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* When no host could tell the vendor's interfaces, C_GetFunctionList's. */
static CK_INTERFACE fallback = { p11i_iface_name, &p11i_function_list, 0 };

void p11i_interfaces_forked(void) { pthread_mutex_init(&offered.mu, NULL); }

/* interface_of returns the CK_INTERFACE of v (offered.mu held), NULL when
 * the table is full. */
static CK_INTERFACE *interface_of(const struct p11i_iface *v)
{
	struct p11i_flist *list = NULL;

	for (int i = 0; i < offered.nlists && list == NULL; i++)
		if (offered.lists[i].version.major == v->major && offered.lists[i].version.minor == v->minor)
			list = &offered.lists[i];
	if (list == NULL) {
		if (offered.nlists == MAX_OFFERED)
			return NULL;
		list = &offered.lists[offered.nlists++];
		if (v->major == 2) {
			memset(list, 0, sizeof *list);
			memcpy(list, &p11i_function_list, sizeof p11i_function_list);
		} else {
			*list = v->minor < 2 ? p11i_flist30_template : p11i_flist32_template;
		}
		list->version.major = v->major;
		list->version.minor = v->minor;
	}
	for (int i = 0; i < offered.nifaces; i++)
		if (offered.ifaces[i].pFunctionList == list && offered.ifaces[i].flags == v->flags)
			return &offered.ifaces[i];
	if (offered.nifaces == MAX_OFFERED)
		return NULL;
	offered.ifaces[offered.nifaces] = (CK_INTERFACE){ p11i_iface_name, list, v->flags };
	return &offered.ifaces[offered.nifaces++];
}

/* offered_now fills out with the interfaces offered, the vendor's default
 * at *def, and returns their number (at least 1). */
static int offered_now(CK_INTERFACE **out, int *def)
{
	struct p11i_iface v[P11I_MAX_IFACES];
	int vdef = 0, n = p11i_sup_interfaces(v, P11I_MAX_IFACES, &vdef), k = 0;

	*def = 0;
	pthread_mutex_lock(&offered.mu);
	for (int i = 0; i < n; i++) {
		CK_INTERFACE *in = interface_of(&v[i]);
		if (in == NULL)
			continue;
		if (i == vdef)
			*def = k;
		out[k++] = in;
	}
	pthread_mutex_unlock(&offered.mu);
	if (k == 0)
		out[k++] = &fallback;
	return k;
}

static CK_RV p11i_C_GetInterfaceList(CK_INTERFACE_PTR list, CK_ULONG_PTR count)
{
	CK_INTERFACE *in[P11I_MAX_IFACES];
	int def, n;

	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	n = offered_now(in, &def);
	if (list == NULL) {
		*count = (CK_ULONG)n;
		return CKR_OK;
	}
	if (*count < (CK_ULONG)n) {
		*count = (CK_ULONG)n;
		return CKR_BUFFER_TOO_SMALL;
	}
	for (int i = 0; i < n; i++)
		list[i] = *in[i];
	*count = (CK_ULONG)n;
	return CKR_OK;
}
CK_RV C_GetInterfaceList(CK_INTERFACE_PTR list, CK_ULONG_PTR count) __attribute__((alias("p11i_C_GetInterfaceList")));

/* No name and no version: the vendor's default interface. Otherwise the
 * first, in the vendor's order, of the name, the version if given and
 * every flag asked for; none: CKR_ARGUMENTS_BAD. */
static CK_RV p11i_C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version, CK_INTERFACE_PTR_PTR out, CK_FLAGS flags)
{
	CK_INTERFACE *in[P11I_MAX_IFACES];
	int def, n;

	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	if (name != NULL && strcmp((const char *)name, (const char *)p11i_iface_name) != 0)
		return CKR_ARGUMENTS_BAD;
	n = offered_now(in, &def);
	if (name == NULL && version == NULL && (in[def]->flags & flags) == flags) {
		*out = in[def];
		return CKR_OK;
	}
	for (int i = 0; i < n; i++) {
		const CK_VERSION *v = in[i]->pFunctionList;
		if (version != NULL && (v->major != version->major || v->minor != version->minor))
			continue;
		if ((in[i]->flags & flags) != flags)
			continue;
		*out = in[i];
		return CKR_OK;
	}
	return CKR_ARGUMENTS_BAD;
}
CK_RV C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version, CK_INTERFACE_PTR_PTR out, CK_FLAGS flags)
	__attribute__((alias("p11i_C_GetInterface")));

/* The generated C_* functions and the function lists, in this translation
 * unit so they can point at the static local functions above. */
#include "functions_gen.inc"

/* p11i_log_write writes a log line without ever raising SIGPIPE in the
 * application: SIGPIPE is blocked on this thread for the write, and one it
 * raised is taken off the pending set before the mask is restored. */
void p11i_log_write(int fd, const char *buf, size_t len)
{
	sigset_t pipe, old;
	struct timespec zero = { 0, 0 };

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, &old);
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (errno == EPIPE && !sigismember(&old, SIGPIPE))
				sigtimedwait(&pipe, NULL, &zero);
			break;
		}
		buf += n;
		len -= (size_t)n;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* p11i_copy_pipe copies through a pipe: write(2) fails with EFAULT on an
 * unreadable source instead of raising SIGSEGV. Used where
 * process_vm_readv is refused (a seccomp profile, an old kernel). */
static int p11i_copy_pipe(void *dst, const void *src, size_t n)
{
	int p[2];
	int rc = 0;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	while (n > 0 && rc == 0) {
		size_t chunk = n < 4096 ? n : 4096; /* below the pipe's capacity */
		ssize_t w = write(p[1], src, chunk);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = -1;
			break;
		}
		for (ssize_t got = 0; got < w;) {
			ssize_t r = read(p[0], (char *)dst + got, (size_t)(w - got));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				rc = -1;
				break;
			}
			got += r;
		}
		src = (const char *)src + w;
		dst = (char *)dst + w;
		n -= (size_t)w;
	}
	close(p[0]);
	close(p[1]);
	return rc;
}

int p11i_copy_in(void *dst, const void *src, size_t n)
{
	struct iovec local = { dst, n }, remote = { (void *)src, n };
	ssize_t got;

	if (n == 0)
		return 0;
	if (src == NULL || (uintptr_t)src + n < (uintptr_t)src)
		return -1;
	got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	if (got == (ssize_t)n)
		return 0;
	if (got >= 0 || errno == EFAULT)
		return -1; /* a partial read: the rest is unmapped */
	return p11i_copy_pipe(dst, src, n);
}

long p11i_copy_string(char *dst, const void *src, size_t max)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), done = 0;

	/* Page by page: the string may end just before an unmapped page. */
	while (done < max) {
		uintptr_t at = (uintptr_t)src + done;
		size_t chunk = page - (at & (page - 1));
		char *nul;

		if (chunk > max - done)
			chunk = max - done;
		if (p11i_copy_in(dst + done, (const void *)at, chunk) != 0)
			return -1;
		nul = memchr(dst + done, '\0', chunk);
		if (nul != NULL)
			return (long)(nul - dst);
		done += chunk;
	}
	return -2;
}

void *p11i_region_new(size_t size, int *memfd)
{
	int fd = memfd_create("p11isolate-region", MFD_CLOEXEC | MFD_ALLOW_SEALING), e;
	void *mem;

	*memfd = -1;
	if (fd < 0)
		return NULL;
	if (ftruncate(fd, (off_t)size) != 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0 ||
	    (mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	/* A child the application forks does not inherit memory the host can
	 * write: it makes regions of its own. */
	madvise(mem, size, MADV_DONTFORK);
	*memfd = fd;
	return mem;
}
