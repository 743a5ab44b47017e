"""Python multiprocessing (fork start method) with PyKCS11 (issue 10).

    python3 multiprocessing_sign.py MODULE PIN WORKERS

The parent loads the module, logs in and makes an EC P-256 key pair on the
token; a pool of forked workers each call C_Initialize again (a module may
answer CKR_CRYPTOKI_ALREADY_INITIALIZED: the state it inherited stands), log
in, sign and verify with the public key. Prints one line per worker and
"N passed, N failed"; exit status 1 on any failure.
"""
import multiprocessing
import sys
import time

import PyKCS11
from PyKCS11 import LowLevel

MODULE, PIN, WORKERS = sys.argv[1], sys.argv[2], int(sys.argv[3])
LABEL = "mp-sign"
lib = PyKCS11.PyKCS11Lib()


def token_slot():
    return lib.getSlotList(tokenPresent=True)[0]


def sign_verify(session):
    priv = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_LABEL, LABEL)])[0]
    pub = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY), (PyKCS11.CKA_LABEL, LABEL)])[0]
    digest = bytes(range(32))
    mech = PyKCS11.Mechanism(PyKCS11.CKM_ECDSA)
    sig = session.sign(priv, digest, mech)
    return session.verify(pub, digest, sig, mech)


def worker(i):
    # A little apart: SoftHSM2 rewrites its token file at every login, and a
    # process reading it meanwhile (another worker's module, loaded directly
    # or in its own host) may find it half written.
    time.sleep(0.3 * i)
    rv = lib.lib.C_Initialize()
    if rv not in (PyKCS11.CKR_OK, PyKCS11.CKR_CRYPTOKI_ALREADY_INITIALIZED):
        return i, "C_Initialize: " + PyKCS11.CKR[rv]
    try:
        session = lib.openSession(token_slot(), PyKCS11.CKF_SERIAL_SESSION)
        try:
            session.login(PIN)
        except PyKCS11.PyKCS11Error as e:
            if e.value != PyKCS11.CKR_USER_ALREADY_LOGGED_IN:
                raise
        ok = sign_verify(session)
        return i, "signed and verified" if ok else "signature did not verify"
    except PyKCS11.PyKCS11Error as e:
        return i, "error: %s" % e


def main():
    lib.load(MODULE)
    session = lib.openSession(token_slot(), PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
    session.login(PIN)
    ec_params = bytes.fromhex("06082a8648ce3d030107")  # prime256v1
    pub_t = [(PyKCS11.CKA_TOKEN, True), (PyKCS11.CKA_VERIFY, True), (PyKCS11.CKA_EC_PARAMS, ec_params),
             (PyKCS11.CKA_LABEL, LABEL)]
    priv_t = [(PyKCS11.CKA_TOKEN, True), (PyKCS11.CKA_SIGN, True), (PyKCS11.CKA_PRIVATE, True),
              (PyKCS11.CKA_LABEL, LABEL)]
    session.generateKeyPair(pub_t, priv_t, mecha=PyKCS11.Mechanism(PyKCS11.CKM_EC_KEY_PAIR_GEN))
    passed = failed = 0
    ok = sign_verify(session)
    print("%s - parent: %s" % ("ok  " if ok else "FAIL", "signed and verified" if ok else "did not verify"))
    passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        for i, what in pool.map(worker, range(WORKERS)):
            good = what == "signed and verified"
            print("%s - worker %d: %s" % ("ok  " if good else "FAIL", i, what))
            passed, failed = (passed + 1, failed) if good else (passed, failed + 1)
    ok = sign_verify(session)
    print("%s - parent after the workers: %s" % ("ok  " if ok else "FAIL", "signed and verified" if ok else "did not verify"))
    passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
    for o in session.findObjects([(PyKCS11.CKA_LABEL, LABEL)]):
        session.destroyObject(o)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
