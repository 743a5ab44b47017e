// SignCheck: signs with a private key on a PKCS#11 token through Java's
// SunPKCS11 provider and verifies each signature in software with the public
// key of the key's certificate. Used by tests/clients/java.sh:
//
//   java -cp DIR SignCheck CONFIG PIN ALIAS...
//
// CONFIG is a SunPKCS11 configuration file (name, library, slotListIndex).
// For each ALIAS (an EC or RSA key entry of the token) it prints "ok   - ..."
// or "FAIL - ..." lines; the exit status is 1 if any check failed.

import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.util.Arrays;

public class SignCheck {
    private static int failures = 0;

    private static void ok(String s) {
        System.out.println("ok   - " + s);
    }

    private static void fail(String s) {
        System.out.println("FAIL - " + s);
        failures++;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: java SignCheck CONFIG PIN ALIAS...");
            System.exit(2);
        }
        Provider base = Security.getProvider("SunPKCS11");
        if (base == null) {
            fail("Java has no SunPKCS11 provider");
            System.exit(1);
        }
        // The provider is configured but not installed: Signature.getInstance
        // without a provider argument (the software verification) cannot pick it.
        Provider p11 = base.configure(args[0]);
        char[] pin = args[1].toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS11", p11);
        ks.load(null, pin);
        ok("SunPKCS11 (" + p11.getName() + ") logs in to the token through the proxy; "
                + ks.size() + " keystore entries");

        SecureRandom rnd = new SecureRandom();
        for (int i = 2; i < args.length; i++) {
            String alias = args[i];
            if (!ks.isKeyEntry(alias)) {
                fail(alias + ": no key entry with this alias on the token");
                continue;
            }
            PrivateKey priv = (PrivateKey) ks.getKey(alias, null);
            X509Certificate cert = (X509Certificate) ks.getCertificate(alias);
            if (cert == null) {
                fail(alias + ": the key entry has no certificate");
                continue;
            }
            PublicKey pub = cert.getPublicKey();
            String alg = priv.getAlgorithm().equals("EC") ? "SHA256withECDSA" : "SHA256withRSA";

            // The key stays on the token: SunPKCS11 hands out a handle, not the value.
            if (priv.getClass().getName().contains("P11") && priv.getEncoded() == null) {
                ok(alias + ": the " + priv.getAlgorithm() + " private key is a token key ("
                        + priv.getClass().getSimpleName() + ", value not extractable)");
            } else {
                fail(alias + ": the private key is a token key (got " + priv.getClass().getName()
                        + ", encoded " + (priv.getEncoded() == null ? "null" : "present") + ")");
            }

            byte[] data = new byte[4096];
            rnd.nextBytes(data);
            Signature signer = Signature.getInstance(alg, p11);
            signer.initSign(priv);
            signer.update(data);
            byte[] sig = signer.sign();

            Signature verifier = Signature.getInstance(alg);
            String vprov = verifier.getProvider().getName();
            verifier.initVerify(pub);
            verifier.update(data);
            boolean good = verifier.verify(sig);
            if (good && !vprov.startsWith("SunPKCS11")) {
                ok(alias + ": " + alg + " signature made with " + signer.getProvider().getName()
                        + " verifies with the certificate's public key in software (" + vprov + ")");
            } else {
                fail(alias + ": " + alg + " signature verifies in software (verified=" + good
                        + ", verifier " + vprov + ")");
            }

            byte[] tampered = Arrays.copyOf(data, data.length);
            tampered[1000] ^= 1;
            verifier.initVerify(pub);
            verifier.update(tampered);
            if (!verifier.verify(sig)) {
                ok(alias + ": the signature does not verify for tampered data");
            } else {
                fail(alias + ": the signature does not verify for tampered data (it did)");
            }
        }
        System.exit(failures > 0 ? 1 : 0);
    }
}
