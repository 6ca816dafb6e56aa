//! The hashes a file is checked by, computed as its bytes stream to disk.

use sha1::Digest as _;

/// The hashes a file is checked by: the hub names blobs by sha256 (LFS files) or git's blob sha1; a URL download
/// is named by sha256 and may also be checked by md5.
pub(crate) struct Hasher {
    main: Main,
    md5: Option<md5::Md5>,
}

enum Main {
    Sha256(sha2::Sha256),
    /// git's blob id: sha1 over `blob {size}\0` and the content.
    GitSha1(sha1::Sha1, u64),
}

impl Main {
    pub fn fresh(&self) -> Main {
        match self {
            Main::Sha256(_) => Main::Sha256(sha2::Sha256::new()),
            Main::GitSha1(_, size) => {
                let mut h = sha1::Sha1::new();
                h.update(format!("blob {size}\0").as_bytes());
                Main::GitSha1(h, *size)
            }
        }
    }
}

impl Hasher {
    pub fn sha256(with_md5: bool) -> Hasher {
        Hasher { main: Main::Sha256(sha2::Sha256::new()), md5: with_md5.then(md5::Md5::new) }
    }

    /// git's blob sha1 of a file of `size` bytes.
    pub fn git_sha1(size: u64) -> Hasher {
        Hasher { main: Main::GitSha1(sha1::Sha1::new(), size).fresh(), md5: None }
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.main {
            Main::Sha256(h) => h.update(data),
            Main::GitSha1(h, _) => h.update(data),
        }
        if let Some(md5) = &mut self.md5 {
            md5.update(data);
        }
    }

    /// An empty hasher of the same kind.
    pub fn fresh(&self) -> Hasher {
        Hasher { main: self.main.fresh(), md5: self.md5.as_ref().map(|_| md5::Md5::new()) }
    }

    pub fn reset(&mut self) {
        self.main = self.main.fresh();
        if self.md5.is_some() {
            self.md5 = Some(md5::Md5::new());
        }
    }

    /// The main hash and the md5 (when asked for), in lowercase hex.
    pub fn finish(self) -> Digests {
        let main = match self.main {
            Main::Sha256(h) => crate::format::hex(&h.finalize()),
            Main::GitSha1(h, _) => crate::format::hex(&h.finalize()),
        };
        (main, self.md5.map(|h| crate::format::hex(&h.finalize())))
    }
}

/// The main hash and the md5 (when asked for), in lowercase hex.
pub(crate) type Digests = (String, Option<String>);

#[cfg(test)]
mod tests {
    use super::Hasher;

    #[test]
    fn git_sha1_of_a_blob_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        let mut h = Hasher::git_sha1(6);
        h.update(b"hello\n");
        assert_eq!(h.finish().0, "ce013625030ba8dba906f756967f9e9ca394464a");
    }

    #[test]
    fn md5_is_computed_beside_sha256_when_asked() {
        let mut h = Hasher::sha256(true);
        h.update(b"");
        let (sha, md5) = h.finish();
        assert_eq!(sha, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(md5.as_deref(), Some("d41d8cd98f00b204e9800998ecf8427e"));
    }
}
