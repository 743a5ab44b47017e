/* CK_TLS_PRF_PARAMS (PKCS#11 2.40), which p11-kit's header lacks: the
 * mechanism parameter with output fields the hostile-input tests lie about. */
#ifndef P11ISOLATE_TESTS_TLS_PRF_H
#define P11ISOLATE_TESTS_TLS_PRF_H

#include <p11-kit/pkcs11.h>

struct tls_prf_params {
	CK_BYTE_PTR pSeed;
	CK_ULONG ulSeedLen;
	CK_BYTE_PTR pLabel;
	CK_ULONG ulLabelLen;
	CK_BYTE_PTR pOutput;
	CK_ULONG_PTR pulOutputLen;
};

#ifndef CKM_TLS_PRF
#define CKM_TLS_PRF 0x378UL
#endif

#endif
