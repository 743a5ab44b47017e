/* forward.h: the part every test module of tests/vetmods shares. It loads
 * the real module (the path in an environment variable, SoftHSM2 by
 * default) and copies its function list, in which the module then replaces
 * the entries it misbehaves in. */
#ifndef P11I_VETMODS_FORWARD_H
#define P11I_VETMODS_FORWARD_H

#include <dlfcn.h>
#include <stdlib.h>

#include <p11-kit/pkcs11.h>

#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"

/* forward_load loads the module named by the environment variable env and
 * copies its function list into *copy: the real list, or NULL. */
static CK_FUNCTION_LIST_PTR forward_load(const char *env, CK_FUNCTION_LIST *copy)
{
	const char *path = getenv(env);
	void *h = dlopen(path != NULL && *path ? path : DEFAULT_MODULE, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
		return NULL;
	CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
	CK_FUNCTION_LIST_PTR fl = NULL;
	if (get == NULL || get(&fl) != CKR_OK || fl == NULL)
		return NULL;
	*copy = *fl;
	return fl;
}

#endif
