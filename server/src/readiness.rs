//! [`Readiness`]: whether this node takes new clients. Answered by `/ready` (a load balancer's check) and
//! asked by `/ws` and Socket.IO before they accept a new connection; connections already open stay.
//!
//! Roles `all` and `writer` are ready once they serve. An edge is ready while its replica is loaded and no
//! more than `stream.max_lag_groups` groups behind the stream ([`StreamStatus::readiness`]).

use std::sync::Arc;

use crate::stream::{NotReady, StreamStatus};

#[derive(Debug, Clone)]
pub enum Readiness {
    /// Ready whenever it serves.
    Always,
    /// Ready while the replica follows the stream closely enough.
    Replica {
        status: Arc<StreamStatus>,
        max_lag_groups: u64,
    },
}

impl Readiness {
    /// `Err` says why new clients are refused.
    pub fn check(&self) -> Result<(), NotReady> {
        match self {
            Readiness::Always => Ok(()),
            Readiness::Replica {
                status,
                max_lag_groups,
            } => status.readiness(*max_lag_groups),
        }
    }
}
