//! Flags for reaching the cluster, the way kubectl spells them.

use crate::cluster::ConnectSettings;
use std::path::PathBuf;

/// How to reach the cluster.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterArgs {
    /// kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the in-cluster service account).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context to use (default: the current context).
    #[arg(long)]
    pub context: Option<String>,
    /// Server-side dry run: the API server checks every write and stores nothing.
    #[arg(long)]
    pub dry_run: bool,
}

impl ClusterArgs {
    /// The library's settings.
    pub fn settings(&self) -> ConnectSettings {
        ConnectSettings {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            dry_run: self.dry_run,
        }
    }
}

/// Tells the user on stderr that the client waits before retrying a request.
pub fn tell_wait(ui: &super::ui::Ui, notice: &crate::cluster::WaitNotice) {
    ui.info(&format!(
        "{}; retry {} of at most {} in {:.1} s",
        notice.reason,
        notice.retry,
        crate::cluster::MAX_RETRIES,
        notice.wait.as_secs_f64()
    ));
}
