//! The process's one rustls crypto provider (ring): kube, reqwest and lettre all use it. A module of
//! its own, below every other, so the client and the notifier don't reach up into `cli` for it.

/// Installs ring as the process default; a second call is a no-op.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
