/*
 * badmod: a deliberately badly built, badly behaved PKCS#11 module, for the
 * sample "bad" report of `p11isolate vet`.  It forwards to a real module
 * (env BADMOD_MODULE, default SoftHSM2) and gets these things wrong, each a
 * distinct, deterministic finding:
 *
 * Built badly (see the build line):
 *   - no stack protector (-fno-stack-protector), no _FORTIFY_SOURCE;
 *   - no RELRO (-z norelro): the GOT stays writable;
 *   - an executable stack (-z execstack);
 *   - a run path into a world-writable directory (-rpath /tmp/badmod);
 *   - an extra exported non-PKCS#11 function, badmod_debug_dump.
 *
 * Behaves badly on malformed but well-shaped arguments:
 *   - C_GetInfo leaks 4 KiB of heap (malloc + memset, never freed) per call;
 *   - C_OpenSession leaks one file descriptor (/dev/null) per call;
 *   - C_GetSlotInfo with the slot ID 0x10000 (a slot it does not list)
 *     dereferences NULL (crash);
 *   - C_GetAttributeValue with a template entry whose ulValueLen is
 *     >= 0x10000000 and pValue non-NULL answers CKR_OK and sets that
 *     entry's ulValueLen to ulValueLen + 4096, more than the buffer holds
 *     (it writes nothing into that buffer; the other entries are answered
 *     by the real module);
 *   - C_FindObjectsInit with a template of more than 1000 entries hangs
 *     (sleeps forever);
 *   - C_GenerateRandom with ulRandomLen == 0 returns 0x7ffffff0, a code no
 *     PKCS#11 version defines;
 *   - C_Sign with pSignature == NULL (a length query) answers CKR_OK but
 *     sets *pulSignatureLen to 0;
 *   - C_CloseSession on an invalid handle answers CKR_OK instead of
 *     CKR_SESSION_HANDLE_INVALID.
 * Everything else forwards unchanged.
 *
 * Build (exactly this; the flags are the point):
 *   gcc -std=gnu11 -O0 -g -fPIC -shared -fno-stack-protector -U_FORTIFY_SOURCE \
 *       -Wl,-z,norelro -Wl,-z,execstack -Wl,-rpath,/tmp/badmod \
 *       -Wall -Wextra -Werror -I/usr/include/p11-kit-1 \
 *       -o build/tests/libbadmod.so tests/vetmods/bad.c -ldl -lpthread
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "forward.h"


#define LEAK_BYTES 4096
#define BAD_SLOT 0x10000UL
#define HUGE_LEN 0x10000000UL
#define LIE_EXTRA 4096UL
#define MAX_TEMPLATE 1000UL
#define UNDEFINED_CKR 0x7ffffff0UL

static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST list;

static unsigned long leaked_blocks, leaked_fds;
/* The leaked block escapes into a volatile, so no optimizer may drop the
 * malloc; each call overwrites it, so every earlier block is truly lost. */
static void *volatile leak_sink;
/* NULL, but the compiler cannot know it: the crash stays a real load. */
static CK_SLOT_INFO *volatile null_slot_info;

/* The extra export: nothing PKCS#11 about it. */
void badmod_debug_dump(void)
{
	fprintf(stderr, "badmod: leaked %lu blocks of %d bytes, %lu fds\n", leaked_blocks,
		LEAK_BYTES, leaked_fds);
}

static CK_RV bad_GetInfo(CK_INFO_PTR info)
{
	void *p = malloc(LEAK_BYTES);
	if (p != NULL) {
		memset(p, 0xa5, LEAK_BYTES);
		leak_sink = p;
		leaked_blocks++;
	}
	return real->C_GetInfo(info);
}

static CK_RV bad_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
			     CK_SESSION_HANDLE_PTR session)
{
	if (open("/dev/null", O_RDONLY) >= 0)
		leaked_fds++;
	return real->C_OpenSession(slot, flags, app, notify, session);
}

static CK_RV bad_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
	if (slot == BAD_SLOT)
		null_slot_info->flags = slot; /* SIGSEGV */
	return real->C_GetSlotInfo(slot, info);
}

static CK_RV bad_GetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
				   CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	int lie = 0;
	for (CK_ULONG i = 0; templ != NULL && i < count; i++)
		if (templ[i].pValue != NULL && templ[i].ulValueLen >= HUGE_LEN)
			lie = 1;
	if (!lie)
		return real->C_GetAttributeValue(session, object, templ, count);

	/* The other entries one at a time from the real module; the huge ones
	 * it never sees, so nothing is written into buffers that may be far
	 * smaller than claimed. */
	for (CK_ULONG i = 0; i < count; i++) {
		if (templ[i].pValue != NULL && templ[i].ulValueLen >= HUGE_LEN)
			templ[i].ulValueLen += LIE_EXTRA;
		else
			(void)real->C_GetAttributeValue(session, object, &templ[i], 1);
	}
	return CKR_OK;
}

static CK_RV bad_FindObjectsInit(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	if (count > MAX_TEMPLATE)
		for (;;)
			sleep(3600);
	return real->C_FindObjectsInit(session, templ, count);
}

static CK_RV bad_GenerateRandom(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG len)
{
	if (len == 0)
		return UNDEFINED_CKR;
	return real->C_GenerateRandom(session, out, len);
}

static CK_RV bad_Sign(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
		      CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	CK_RV rv = real->C_Sign(session, data, data_len, sig, sig_len);
	/* The length query "succeeds" with a length nothing fits into. */
	if (rv == CKR_OK && sig == NULL && sig_len != NULL)
		*sig_len = 0;
	return rv;
}

static CK_RV bad_CloseSession(CK_SESSION_HANDLE session)
{
	CK_RV rv = real->C_CloseSession(session);
	return rv == CKR_SESSION_HANDLE_INVALID ? CKR_OK : rv;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	if (real == NULL) {
		CK_FUNCTION_LIST_PTR fl = forward_load("BADMOD_MODULE", &list);
		if (fl == NULL)
			return CKR_GENERAL_ERROR;
		list.C_GetFunctionList = C_GetFunctionList;
		list.C_GetInfo = bad_GetInfo;
		list.C_OpenSession = bad_OpenSession;
		list.C_GetSlotInfo = bad_GetSlotInfo;
		list.C_GetAttributeValue = bad_GetAttributeValue;
		list.C_FindObjectsInit = bad_FindObjectsInit;
		list.C_GenerateRandom = bad_GenerateRandom;
		list.C_Sign = bad_Sign;
		list.C_CloseSession = bad_CloseSession;
		real = fl;
	}
	*out = &list;
	return CKR_OK;
}
