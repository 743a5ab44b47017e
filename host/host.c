#define _GNU_SOURCE
#include "host.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Runs before the Go runtime starts: whatever the exec left open beyond
 * stdio and the control channel is closed here, so neither Go nor the vendor
 * module ever sees it. Core dumps are turned off so a vendor crash cannot
 * write PINs or keys to disk. */
__attribute__((constructor)) static void p11h_sweep(void)
{
	struct rlimit none = { 0, 0 };

	if (syscall(SYS_close_range, P11H_CONTROL_FD + 1, ~0U, 0) != 0) {
		for (int fd = P11H_CONTROL_FD + 1; fd < 65536; fd++)
			close(fd);
	}
	setrlimit(RLIMIT_CORE, &none);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

CK_FUNCTION_LIST_PTR p11h_load(const char *path, char *err, size_t errlen)
{
	CK_C_GetFunctionList get;
	CK_FUNCTION_LIST_PTR list = NULL;
	CK_RV rv;
	void *h;

	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		snprintf(err, errlen, "cannot load %s: %s", path, dlerror());
		return NULL;
	}
	get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
	if (get == NULL) {
		snprintf(err, errlen, "%s is not a PKCS#11 module: it has no C_GetFunctionList symbol", path);
		return NULL;
	}
	rv = get(&list);
	if (rv != CKR_OK || list == NULL) {
		snprintf(err, errlen, "%s: C_GetFunctionList failed with 0x%lx", path, (unsigned long)rv);
		return NULL;
	}
	return list;
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
