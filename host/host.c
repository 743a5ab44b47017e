#define _GNU_SOURCE
#include "host.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* p11h_init is the init of the host's pid namespace (the spawn asked for
 * it with P11H_INIT_ARG): it forks the host proper, which returns to start
 * Go as pid 2, and stays behind to reap. An init is immune to the signals
 * its own namespace sends with the default action, so raise(SIGKILL) or
 * abort() in a vendor module would not end a host that was pid 1; pid 2
 * dies of them as anywhere else. When the host ends, the init writes its
 * wait status to P11H_STATUS_FD, for the proxy's log, and exits, which
 * kills whatever else is left in the namespace.
 *
 * The init also watches the control channel (it holds a copy of the host's
 * end): when the proxy's end closes (the application finalized, exited or
 * was killed) and the host has not ended within P11H_GRACE_MS, the init
 * kills it. A host stuck in vendor code that never returns (an ELF
 * constructor, C_GetFunctionList, a hung call) would never read the EOF
 * itself, and would outlive the application. */
#define P11H_GRACE_MS 300

static void p11h_init(void)
{
	sigset_t chld, old;
	struct pollfd pf[2];
	int sfd, hup = 0;
	pid_t host;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	host = fork();
	if (host < 0) {
		dprintf(2, "p11isolate-host: init: fork: %s\n", strerror(errno));
		_exit(126);
	}
	if (host == 0) {
		close(P11H_STATUS_FD);
		if (sfd >= 0)
			close(sfd);
		sigprocmask(SIG_SETMASK, &old, NULL);
		/* The host leads a process group of its own, so it can kill
		 * whatever the vendor forks (see killGroup in main.go). */
		setpgid(0, 0);
		return;
	}
	pf[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = P11H_CONTROL_FD, .events = POLLRDHUP };
	for (;;) {
		int st = 0, n;
		pid_t w;

		while ((w = waitpid(-1, &st, WNOHANG | __WALL)) > 0) {
			if (w == host) {
				while (write(P11H_STATUS_FD, &st, sizeof(st)) < 0 && errno == EINTR)
					;
				_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
			}
		}
		if (w < 0 && errno != EINTR)
			_exit(125);
		/* Without a signalfd, poll the children every 100 ms. */
		n = poll(pf, hup ? 1 : 2, hup ? P11H_GRACE_MS : sfd >= 0 ? -1 : 100);
		if (n < 0 && errno != EINTR)
			_exit(125);
		if (n == 0 && hup) {
			kill(host, SIGKILL);
			continue;
		}
		if (n > 0 && !hup && (pf[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0)
			hup = 1;
		if (n > 0 && (pf[0].revents & POLLIN) != 0) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) > 0)
				;
		}
	}
}

/* Runs before the Go runtime starts: whatever the exec left open beyond
 * stdio and the control channel is closed here, so neither Go nor the vendor
 * module ever sees it. Core dumps are turned off so a vendor crash cannot
 * write PINs or keys to disk, and the host is not dumpable: its /proc files
 * belong to root and same-uid processes cannot ptrace it. */
__attribute__((constructor)) static void p11h_sweep(int argc, char **argv, char **envp)
{
	struct rlimit none = { 0, 0 };
	int init = argc == 2 && argv != NULL && argv[1] != NULL && strcmp(argv[1], P11H_INIT_ARG) == 0;
	int keep = init ? P11H_STATUS_FD : P11H_CONTROL_FD;

	(void)envp;
	if (syscall(SYS_close_range, keep + 1, ~0U, 0) != 0) {
		for (int fd = keep + 1; fd < 65536; fd++)
			close(fd);
	}
	setrlimit(RLIMIT_CORE, &none);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (init)
		p11h_init();
}

/* functions_of is how many functions a function list of version v holds
 * (0: a version this build does not know the list of). */
static int functions_of(CK_VERSION v)
{
	if (v.major == 2)
		return P11I_N240;
	if (v.major == 3)
		return v.minor < 2 ? P11I_N30 : P11I_N32;
	return 0;
}

/* interfaces fills m's interfaces from the module's C_GetInterfaceList,
 * and points m at the widest list it offers. The module's other
 * interfaces (vendor-defined names) are not the proxy's to offer. */
static void interfaces(void *h, struct p11h_module *m)
{
	CK_RV (*list_fn)(CK_INTERFACE_PTR, CK_ULONG_PTR) = (CK_RV(*)(CK_INTERFACE_PTR, CK_ULONG_PTR))dlsym(h, "C_GetInterfaceList");
	CK_RV (*get_fn)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS) =
		(CK_RV(*)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS))dlsym(h, "C_GetInterface");
	CK_INTERFACE all[32], *def = NULL;
	CK_ULONG count = 0;

	if (list_fn == NULL || list_fn(NULL, &count) != CKR_OK || count == 0)
		return;
	if (count > sizeof all / sizeof all[0])
		count = sizeof all / sizeof all[0];
	memset(all, 0, sizeof all);
	if (list_fn(all, &count) != CKR_OK)
		return;
	if (get_fn != NULL && get_fn(NULL, NULL, &def, 0) != CKR_OK)
		def = NULL;
	m->n = 0;
	m->def = -1;
	for (CK_ULONG i = 0; i < count && m->n < P11H_MAX_IFACES; i++) {
		const CK_INTERFACE *in = &all[i];
		if (in->pInterfaceName == NULL || in->pFunctionList == NULL ||
		    strcmp((const char *)in->pInterfaceName, "PKCS 11") != 0)
			continue;
		CK_VERSION v = *(const CK_VERSION *)in->pFunctionList;
		int n = functions_of(v);
		if (n == 0)
			continue;
		if (def != NULL && def->pFunctionList == in->pFunctionList && def->flags == in->flags)
			m->def = m->n;
		m->iface[m->n].major = v.major;
		m->iface[m->n].minor = v.minor;
		m->iface[m->n].flags = in->flags;
		m->n++;
		if (n > m->nfuncs) {
			m->list = in->pFunctionList;
			m->nfuncs = n;
		}
		/* The highest version of each route's list. */
		int r = n == P11I_N30 ? 1 : n == P11I_N32 ? 2 : -1;
		if (r > 0) {
			const CK_VERSION *have = m->route[r] != NULL ? &m->route[r]->version : NULL;
			if (have == NULL || v.major > have->major || (v.major == have->major && v.minor > have->minor))
				m->route[r] = in->pFunctionList;
		}
	}
	if (m->n == 0)
		m->n = 1; /* none usable: C_GetFunctionList's, still in iface[0] */
	if (m->def < 0)
		m->def = 0;
}

int p11h_load(const char *path, char *err, size_t errlen, struct p11h_module *m)
{
	CK_C_GetFunctionList get;
	CK_FUNCTION_LIST_PTR list = NULL;
	CK_RV rv;
	void *h;

	memset(m, 0, sizeof *m);
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		snprintf(err, errlen, "cannot load %s: %s", path, dlerror());
		return -1;
	}
	get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
	if (get == NULL) {
		snprintf(err, errlen, "%s is not a PKCS#11 module: it has no C_GetFunctionList symbol", path);
		return -1;
	}
	rv = get(&list);
	if (rv != CKR_OK || list == NULL) {
		snprintf(err, errlen, "%s: C_GetFunctionList failed with 0x%lx", path, (unsigned long)rv);
		return -1;
	}
	/* Whatever version it claims, C_GetFunctionList's list is only sure
	 * to hold the 2.40 functions. */
	m->list = (const struct p11i_flist *)list;
	m->nfuncs = P11I_N240;
	m->route[0] = m->list;
	m->n = 1;
	m->def = 0;
	m->iface[0].major = list->version.major;
	m->iface[0].minor = list->version.minor;
	interfaces(h, m);
	return 0;
}

CK_RV p11h_create_mutex(CK_VOID_PTR_PTR m)
{
	pthread_mutex_t *mu;

	if (m == NULL)
		return CKR_ARGUMENTS_BAD;
	mu = malloc(sizeof(*mu));
	if (mu == NULL)
		return CKR_HOST_MEMORY;
	pthread_mutex_init(mu, NULL);
	*m = mu;
	return CKR_OK;
}

CK_RV p11h_destroy_mutex(CK_VOID_PTR m)
{
	if (m == NULL)
		return CKR_MUTEX_BAD;
	pthread_mutex_destroy(m);
	free(m);
	return CKR_OK;
}

CK_RV p11h_lock_mutex(CK_VOID_PTR m)
{
	if (m == NULL)
		return CKR_MUTEX_BAD;
	return pthread_mutex_lock(m) == 0 ? CKR_OK : CKR_GENERAL_ERROR;
}

CK_RV p11h_unlock_mutex(CK_VOID_PTR m)
{
	if (m == NULL)
		return CKR_MUTEX_BAD;
	return pthread_mutex_unlock(m) == 0 ? CKR_OK : CKR_MUTEX_NOT_LOCKED;
}

void p11h_init_args(CK_C_INITIALIZE_ARGS *a, unsigned mask, CK_FLAGS flags, char *reserved)
{
	memset(a, 0, sizeof(*a));
	if (mask & 1)
		a->CreateMutex = p11h_create_mutex;
	if (mask & 2)
		a->DestroyMutex = p11h_destroy_mutex;
	if (mask & 4)
		a->LockMutex = p11h_lock_mutex;
	if (mask & 8)
		a->UnlockMutex = p11h_unlock_mutex;
	a->flags = flags;
	a->pReserved = reserved;
}

/* The vendor's crashes must end the host by the signal itself, so the proxy
 * can report "killed by SIGSEGV" and nothing of the vendor's registers or
 * stack is printed. The Go runtime would catch these signals, print a
 * traceback and exit with status 2; the host has no use for them (a fault
 * in its own Go code should end it just the same). */
void p11h_default_fault_signals(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS };
	struct sigaction dfl;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &dfl, NULL);
}

#define P11H_MAX_FDS 1024
static atomic_int p11h_fds[P11H_MAX_FDS];

void p11h_fd_register(int fd)
{
	for (int i = 0; i < P11H_MAX_FDS; i++) {
		int empty = 0;
		if (atomic_compare_exchange_strong(&p11h_fds[i], &empty, fd + 1))
			return;
	}
}

void p11h_fd_unregister(int fd)
{
	for (int i = 0; i < P11H_MAX_FDS; i++) {
		int want = fd + 1;
		if (atomic_compare_exchange_strong(&p11h_fds[i], &want, 0))
			return;
	}
}

static void p11h_close_channels_in_child(void)
{
	for (int i = 0; i < P11H_MAX_FDS; i++) {
		int v = atomic_exchange(&p11h_fds[i], 0);
		if (v > 0)
			close(v - 1);
	}
}

__attribute__((constructor)) static void p11h_atfork(void)
{
	pthread_atfork(NULL, NULL, p11h_close_channels_in_child);
}

CK_RV p11h_mechanism_known(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_MECHANISM_TYPE mech)
{
	CK_SESSION_INFO si;
	CK_MECHANISM_INFO mi;
	CK_RV rv;

	if (f->C_GetSessionInfo == NULL || f->C_GetMechanismInfo == NULL)
		return CKR_OK;
	rv = f->C_GetSessionInfo(s, &si);
	if (rv != CKR_OK)
		return rv;
	rv = f->C_GetMechanismInfo(si.slotID, mech, &mi);
	return rv == CKR_MECHANISM_INVALID ? rv : CKR_OK;
}
