//! The mutual proof of the cluster token: each side shows it knows the
//! token without ever sending it.
//!
//! The worker's hello carries a fresh random nonce, the master answers with
//! its own (`Challenge`), and each side sends an HMAC-SHA256, keyed with the
//! token, over the worker id and both nonces: the worker first (`Proof`),
//! then the master in its `Welcome`. Fresh nonces on both sides mean an
//! old proof cannot be replayed, and the role label inside each MAC means
//! one side's proof cannot be reflected back as the other's. A peer that
//! does not know the token learns nothing it could reuse; as with any
//! shared secret, a short guessable token can still be guessed offline from
//! one proof, hence the advice to use a long random one.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The length of every nonce, in bytes.
pub const NONCE_BYTES: usize = 32;

/// A fresh random nonce.
pub fn new_nonce() -> Vec<u8> {
    rand::random::<[u8; NONCE_BYTES]>().to_vec()
}

/// One handshake's inputs, as both sides see them.
#[derive(Clone, Copy)]
pub struct Exchange<'a> {
    pub token: &'a str,
    pub worker_id: &'a str,
    pub worker_nonce: &'a [u8],
    pub master_nonce: &'a [u8],
}

impl Exchange<'_> {
    /// What the worker sends to show it knows the token.
    pub fn worker_proof(&self) -> Vec<u8> {
        self.mac(b"swarmer worker proof")
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// What the master sends (in its welcome) to show it knows the token.
    pub fn master_proof(&self) -> Vec<u8> {
        self.mac(b"swarmer master proof")
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Whether `proof` is the worker's proof; compared in constant time.
    pub fn is_worker_proof(&self, proof: &[u8]) -> bool {
        self.mac(b"swarmer worker proof")
            .verify_slice(proof)
            .is_ok()
    }

    /// Whether `proof` is the master's proof; compared in constant time.
    pub fn is_master_proof(&self, proof: &[u8]) -> bool {
        self.mac(b"swarmer master proof")
            .verify_slice(proof)
            .is_ok()
    }

    fn mac(&self, role: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.token.as_bytes()).expect("HMAC takes any key");
        // Every part is length-prefixed, so no two different inputs
        // concatenate to the same bytes.
        for part in [
            role,
            self.worker_id.as_bytes(),
            self.worker_nonce,
            self.master_nonce,
        ] {
            mac.update(&(part.len() as u32).to_be_bytes());
            mac.update(part);
        }
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange<'a>(token: &'a str, wn: &'a [u8], mn: &'a [u8]) -> Exchange<'a> {
        Exchange {
            token,
            worker_id: "w1",
            worker_nonce: wn,
            master_nonce: mn,
        }
    }

    #[test]
    fn proofs_hold_only_for_the_same_token_nonces_and_role() {
        let (wn, mn) = (new_nonce(), new_nonce());
        assert_eq!(wn.len(), NONCE_BYTES);
        assert_ne!(wn, mn, "nonces are random");
        let ex = exchange("s3cret", &wn, &mn);
        assert!(ex.is_worker_proof(&ex.worker_proof()));
        assert!(ex.is_master_proof(&ex.master_proof()));
        // A proof cannot be reflected back as the other side's.
        assert!(!ex.is_master_proof(&ex.worker_proof()));
        assert!(!ex.is_worker_proof(&ex.master_proof()));
        // Another token, other nonces or another worker id: no.
        assert!(!exchange("guess", &wn, &mn).is_worker_proof(&ex.worker_proof()));
        assert!(!exchange("s3cret", &mn, &wn).is_worker_proof(&ex.worker_proof()));
        let other_id = Exchange {
            worker_id: "w2",
            ..ex
        };
        assert!(!other_id.is_worker_proof(&ex.worker_proof()));
        assert!(!ex.is_worker_proof(&[]));
        assert!(!ex.is_worker_proof(&ex.worker_proof()[..16]));
    }

    #[test]
    fn the_token_is_not_in_the_proof() {
        let (wn, mn) = (new_nonce(), new_nonce());
        let ex = exchange("a-token-that-must-stay-secret", &wn, &mn);
        let proof = ex.worker_proof();
        assert_eq!(proof.len(), 32);
        assert!(!proof.windows(7).any(|w| w == b"a-token"));
    }
}
