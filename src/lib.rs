//! sealkey: SSH deploy keys and the Kubernetes Secrets that GitOps and git-sync deployments live
//! on, generated in memory, registered on GitHub, sealed (age, SOPS, Sealed Secrets) and emitted
//! for their consumers, without a private key ever touching disk unsealed.
//!
//! [`github`] registers, lists, audits and prunes deploy keys through GitHub's REST API (and
//! reads `/meta` host keys); the rest works offline.
//!
//! The library never prints and never reads the terminal; `sealkey::cli` is the only part that
//! talks to people.
//!
//! ```
//! use sealkey::emit::{Consumer, DocumentKind, EmitSettings};
//! use sealkey::keygen::{DeployKey, KeyType};
//! use sealkey::known_hosts::KnownHosts;
//! use sealkey::repo::RepoRef;
//!
//! let repo = RepoRef::parse("acme/dags")?;
//! let key = DeployKey::generate(KeyType::Ed25519, "sealkey:acme/dags")?;
//! let settings = EmitSettings::new(repo, "dev", Consumer::AirflowChart, DocumentKind::HelmRelease);
//! let stream = sealkey::emit::emit(&settings, &key, &KnownHosts::github_pinned())?;
//! let recipients = sealkey::seal::age::parse_recipients(
//!     &["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p".to_string()])?;
//! let sealed = sealkey::seal::age::seal_text(stream.to_yaml().expose_secret().as_bytes(), &recipients)?;
//! assert!(sealed.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
//! # Ok::<(), sealkey::error::Error>(())
//! ```

pub mod audit;
pub mod aws;
pub mod child;
pub mod cli;
pub mod cluster;
pub mod create;
pub mod emit;
pub mod error;
pub mod github;
pub mod harden;
pub mod http;
pub mod input_file;
pub mod keygen;
pub mod known_hosts;
pub mod output;
pub mod podspec;
pub mod repo;
pub mod rotate;
pub mod seal;
pub mod secret;
pub mod sent;
pub mod store;
pub mod yaml;
