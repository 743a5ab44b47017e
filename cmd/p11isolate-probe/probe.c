/* p11isolate-probe LIBRARY: loads libp11isolate.so the way an application
 * does (dlopen, C_GetFunctionList, C_Initialize with OS locking), asks the
 * vendor for its identity and its slots, and finalizes. `p11isolate check`
 * runs it so that the check goes through the library itself: a Go program
 * cannot load a second Go runtime (the library's) into its own process.
 *
 * Output, one fact per line (read by the command, and readable as is):
 *   info <cryptoki version> <manufacturer> | <library description> <library version>
 *   slot <id> <slot description> | token <label> <flags in hex>
 *   rv <function> <CKR in hex>        (a call that failed)
 * Exit status: 0, or 1 when a call failed, 2 when the library cannot load. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

/* trim prints a blank-padded PKCS#11 string without its padding. */
static void trim(const unsigned char *s, size_t n)
{
	while (n > 0 && s[n - 1] == ' ')
		n--;
	fwrite(s, 1, n, stdout);
}

static int failed(const char *fn, CK_RV rv)
{
	printf("rv %s 0x%lx\n", fn, (unsigned long)rv);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: p11isolate-probe LIBRARY\n");
		return 2;
	}
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		fprintf(stderr, "p11isolate-probe: cannot load %s: %s\n", argv[1], dlerror());
		return 2;
	}
	CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
	CK_FUNCTION_LIST_PTR f = NULL;
	if (get == NULL || get(&f) != CKR_OK || f == NULL) {
		fprintf(stderr, "p11isolate-probe: %s has no usable C_GetFunctionList\n", argv[1]);
		return 2;
	}
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_RV rv = f->C_Initialize(&args);
	if (rv != CKR_OK)
		return failed("C_Initialize", rv);

	int bad = 0;
	CK_INFO info;
	if ((rv = f->C_GetInfo(&info)) != CKR_OK) {
		bad = failed("C_GetInfo", rv);
	} else {
		printf("info %u.%u ", info.cryptokiVersion.major, info.cryptokiVersion.minor);
		trim(info.manufacturerID, sizeof info.manufacturerID);
		printf(" | ");
		trim(info.libraryDescription, sizeof info.libraryDescription);
		printf(" %u.%u\n", info.libraryVersion.major, info.libraryVersion.minor);
	}

	CK_ULONG n = 0;
	CK_SLOT_ID *slots = NULL;
	if ((rv = f->C_GetSlotList(CK_FALSE, NULL, &n)) != CKR_OK ||
	    (slots = calloc(n + 1, sizeof *slots)) == NULL || (rv = f->C_GetSlotList(CK_FALSE, slots, &n)) != CKR_OK)
		bad = failed("C_GetSlotList", rv);
	for (CK_ULONG i = 0; !bad && i < n; i++) {
		CK_SLOT_INFO si;
		CK_TOKEN_INFO ti;
		if ((rv = f->C_GetSlotInfo(slots[i], &si)) != CKR_OK) {
			bad = failed("C_GetSlotInfo", rv);
			break;
		}
		printf("slot %lu ", (unsigned long)slots[i]);
		trim(si.slotDescription, sizeof si.slotDescription);
		if ((si.flags & CKF_TOKEN_PRESENT) && f->C_GetTokenInfo(slots[i], &ti) == CKR_OK) {
			printf(" | token ");
			trim(ti.label, sizeof ti.label);
			printf(" 0x%lx", (unsigned long)ti.flags);
		}
		printf("\n");
	}
	free(slots);
	if ((rv = f->C_Finalize(NULL)) != CKR_OK)
		bad = failed("C_Finalize", rv);
	return bad;
}
