import CSodium

/// Message authentication for the chained audit log.
public enum MAC {
    /// HMAC-SHA-256 of `message` under `key`.
    ///
    /// Uses `crypto_auth_hmacsha256_init/update/final`, which accept a key of any length, rather
    /// than `crypto_auth_hmacsha256`, which requires exactly 32 bytes. For a 32-byte key the two are
    /// identical (tested); the wider form lets us check against RFC 4231's short-key vectors.
    public static func hmacSHA256(key: SecretBytes, message: [UInt8]) -> [UInt8] {
        Sodium.requireInitialized()
        var state = crypto_auth_hmacsha256_state()
        // The state holds key-derived pads; wipe it however we leave.
        defer { withUnsafeMutableBytes(of: &state) { sodium_memzero($0.baseAddress!, $0.count) } }
        var tag = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_bytes()))
        key.withUnsafeBytes { k in
            _ = crypto_auth_hmacsha256_init(&state, k.baseAddress!.assumingMemoryBound(to: UInt8.self), k.count)
        }
        message.withUnsafeBufferPointer { m in
            _ = crypto_auth_hmacsha256_update(&state, m.baseAddress, UInt64(m.count))
        }
        tag.withUnsafeMutableBufferPointer { t in
            _ = crypto_auth_hmacsha256_final(&state, t.baseAddress!)
        }
        return tag
    }

    /// Compares two byte strings in time independent of their contents (`sodium_memcmp`).
    /// Different lengths compare unequal; lengths are not treated as secret.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in sodium_memcmp(pa.baseAddress!, pb.baseAddress!, a.count) == 0 }
        }
    }
}

/// Cryptographically secure random bytes.
public enum Random {
    /// `count` bytes from `randombytes_buf` (the kernel CSPRNG via getrandom on Linux).
    public static func bytes(_ count: Int) -> [UInt8] {
        Sodium.requireInitialized()
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { buf in
            if let base = buf.baseAddress { randombytes_buf(base, buf.count) }
        }
        return out
    }
}
