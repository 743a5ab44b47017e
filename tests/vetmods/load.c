/*
 * load MODULE: the smallest PKCS#11 application, for watch_test.sh.
 *
 * dlopens MODULE, calls C_GetFunctionList, C_Initialize(NULL) (prints the
 * CKR) and C_Finalize.  From main it also reads P11ISOLATE_PROBE_SELF with
 * getenv and opens /dev/null: calls of the executable itself, which the
 * watch shim must not report.  It prints whether LD_PRELOAD and
 * P11I_WATCH are visible, which the shim must hide.  Before
 * C_Initialize it points fd 2 at /dev/null, as a vendor might: the shim
 * writes to its private copy, so its lines must still arrive.  All of its
 * own output goes to stdout.
 *
 * Build: gcc -std=gnu11 -O2 -g -Wall -Wextra -Werror \
 *            -I/usr/include/p11-kit-1 -o load tests/vetmods/load.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		printf("usage: load MODULE\n");
		return 2;
	}
	printf("probe-self: %s\n", getenv("P11ISOLATE_PROBE_SELF") ? "set" : "unset");
	printf("LD_PRELOAD visible: %s\n", getenv("LD_PRELOAD") ? "yes" : "no");
	printf("P11I_WATCH visible: %s\n", getenv("P11I_WATCH") ? "yes" : "no");

	int null = open("/dev/null", O_WRONLY);
	if (null < 0 || dup2(null, 2) < 0) {
		printf("cannot redirect stderr\n");
		return 1;
	}

	void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		printf("dlopen: %s\n", dlerror());
		return 1;
	}
	CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
	CK_FUNCTION_LIST_PTR fl = NULL;
	if (get == NULL || get(&fl) != CKR_OK || fl == NULL) {
		printf("C_GetFunctionList failed\n");
		return 1;
	}
	CK_RV rv = fl->C_Initialize(NULL);
	printf("C_Initialize: 0x%08lx\n", (unsigned long)rv);
	if (rv == CKR_OK)
		printf("C_Finalize: 0x%08lx\n", (unsigned long)fl->C_Finalize(NULL));
	fflush(stdout);
	return rv == CKR_OK ? 0 : 1;
}
