"""Test tokens for PushStreamAuth, minted with the standard library (HS*) and the
`openssl` command (RS256, ES256, EdDSA: keys made once per directory).

    keys = Keys(dirpath)                      # hs.key, hs2.key, rsa/ec/ed .pem + .pub
    tok = keys.token({"pushstream": {"subscribe": ["a"]}, "exp": now + 60}, alg="HS256", kid="k1")
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_to_raw(der, size=32):
    """DER ECDSA-Sig-Value -> JOSE r||s."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\0")
        out += v.rjust(size, b"\0")
        i += 2 + n
    return out


def compact(header, claims, sign):
    h = b64u(json.dumps(header, separators=(",", ":")).encode())
    p = b64u(json.dumps(claims, separators=(",", ":")).encode())
    data = f"{h}.{p}".encode()
    return f"{h}.{p}.{b64u(sign(data))}"


class Keys:
    SECRET = b"0123456789abcdef0123456789abcdef-k1"
    SECRET2 = b"fedcba9876543210fedcba9876543210-k2"

    def __init__(self, d):
        self.d = d
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        self._write("hs.key", self.SECRET + b"\n")     # one trailing newline ignored
        self._write("hs2.key", self.SECRET2)
        for name, args in (("rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                           ("ec", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                           ("ed", ["-algorithm", "ED25519"])):
            if not os.path.exists(self.path(name + ".pem")):
                subprocess.run(["openssl", "genpkey", *args, "-out", self.path(name + ".pem")],
                               check=True, capture_output=True)
                subprocess.run(["openssl", "pkey", "-in", self.path(name + ".pem"), "-pubout",
                                "-out", self.path(name + ".pub")], check=True, capture_output=True)
            os.chmod(self.path(name + ".pub"), 0o644)

    def path(self, name):
        return os.path.join(self.d, name)

    def _write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)
        os.chmod(self.path(name), 0o644)

    def _openssl_sign(self, key, data, digest=True):
        tmp = self.path("in.bin")
        with open(tmp, "wb") as f:
            f.write(data)
        if digest:
            cmd = ["openssl", "dgst", "-sha256", "-sign", self.path(key), tmp]
        else:
            cmd = ["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", self.path(key), "-in", tmp]
        return subprocess.run(cmd, check=True, capture_output=True).stdout

    def signer(self, alg, secret=None):
        if alg.startswith("HS"):
            h = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
            return lambda data: hmac.new(secret or self.SECRET, data, h).digest()
        if alg == "RS256":
            return lambda data: self._openssl_sign("rsa.pem", data)
        if alg == "ES256":
            return lambda data: der_to_raw(self._openssl_sign("ec.pem", data))
        if alg == "EdDSA":
            return lambda data: self._openssl_sign("ed.pem", data, digest=False)
        if alg == "none":
            return lambda data: b""
        raise ValueError(alg)

    def token(self, claims, alg="HS256", kid=None, secret=None, header=None):
        hdr = {"alg": alg, "typ": "JWT"}
        if kid:
            hdr["kid"] = kid
        hdr.update(header or {})
        return compact(hdr, claims, self.signer(alg, secret))
