//! `flagwire.v1.RolloutService`: canary rollouts. Rollback plans, executions and the kill
//! switch answer UNIMPLEMENTED until they exist.

use super::{meta, required};
use crate::rollouts::{Action, Rollouts};
use flagwire_proto::grpc::rollout_service_server::RolloutService;
use flagwire_proto::v1::*;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The RolloutService handlers.
pub struct RolloutApi {
    rollouts: Arc<Rollouts>,
}

impl RolloutApi {
    /// Handlers over `rollouts`.
    pub fn new(rollouts: Arc<Rollouts>) -> Self {
        Self { rollouts }
    }

    async fn act(&self, r: &Request<impl Identified>, action: Action) -> Result<Rollout, Status> {
        let m = meta(r, r.get_ref().reason())?;
        let id = r.get_ref().id();
        if id.is_empty() {
            return Err(Status::invalid_argument("invalid argument: id: required"));
        }
        Ok(self.rollouts.act(&m, id, action).await?)
    }
}

/// Requests naming a rollout, with an optional reason.
trait Identified {
    fn id(&self) -> &str;
    fn reason(&self) -> &str {
        ""
    }
}

macro_rules! identified {
    ($($t:ty),*) => {$(
        impl Identified for $t {
            fn id(&self) -> &str { &self.id }
            fn reason(&self) -> &str { &self.reason }
        }
    )*};
}
identified!(
    PauseRolloutRequest,
    ResumeRolloutRequest,
    PromoteRolloutRequest,
    RollbackRolloutRequest
);
impl Identified for StartRolloutRequest {
    fn id(&self) -> &str {
        &self.id
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn later<T>(what: &str) -> Reply<T> {
    Err(Status::unimplemented(format!(
        "{what} is not available yet"
    )))
}

#[tonic::async_trait]
impl RolloutService for RolloutApi {
    async fn create_rollout(
        &self,
        r: Request<CreateRolloutRequest>,
    ) -> Reply<CreateRolloutResponse> {
        let m = meta(&r, "")?;
        let rollout = required(r.into_inner().rollout, "rollout")?;
        let rollout = Some(self.rollouts.create(&m, rollout).await?);
        Ok(Response::new(CreateRolloutResponse { rollout }))
    }

    async fn start_rollout(&self, r: Request<StartRolloutRequest>) -> Reply<StartRolloutResponse> {
        let rollout = Some(self.act(&r, Action::Start).await?);
        Ok(Response::new(StartRolloutResponse { rollout }))
    }

    async fn get_rollout(&self, r: Request<GetRolloutRequest>) -> Reply<GetRolloutResponse> {
        let r = r.into_inner();
        let limit = r.window_limit.min(10_000) as usize;
        let rollout = Some(self.rollouts.get(&r.id, limit)?);
        Ok(Response::new(GetRolloutResponse { rollout }))
    }

    async fn list_rollouts(&self, r: Request<ListRolloutsRequest>) -> Reply<ListRolloutsResponse> {
        let r = r.into_inner();
        let rollouts = self.rollouts.list(&r.environment, &r.flag_key);
        Ok(Response::new(ListRolloutsResponse { rollouts }))
    }

    async fn pause_rollout(&self, r: Request<PauseRolloutRequest>) -> Reply<PauseRolloutResponse> {
        let rollout = Some(self.act(&r, Action::Pause).await?);
        Ok(Response::new(PauseRolloutResponse { rollout }))
    }

    async fn resume_rollout(
        &self,
        r: Request<ResumeRolloutRequest>,
    ) -> Reply<ResumeRolloutResponse> {
        let rollout = Some(self.act(&r, Action::Resume).await?);
        Ok(Response::new(ResumeRolloutResponse { rollout }))
    }

    async fn promote_rollout(
        &self,
        r: Request<PromoteRolloutRequest>,
    ) -> Reply<PromoteRolloutResponse> {
        let rollout = Some(self.act(&r, Action::Promote).await?);
        Ok(Response::new(PromoteRolloutResponse { rollout }))
    }

    async fn rollback_rollout(
        &self,
        r: Request<RollbackRolloutRequest>,
    ) -> Reply<RollbackRolloutResponse> {
        let rollout = Some(self.act(&r, Action::Rollback).await?);
        Ok(Response::new(RollbackRolloutResponse { rollout }))
    }

    async fn create_rollback_plan(
        &self,
        _: Request<CreateRollbackPlanRequest>,
    ) -> Reply<CreateRollbackPlanResponse> {
        later("rollback plans")
    }

    async fn list_rollback_plans(
        &self,
        _: Request<ListRollbackPlansRequest>,
    ) -> Reply<ListRollbackPlansResponse> {
        later("rollback plans")
    }

    async fn execute_rollback_plan(
        &self,
        _: Request<ExecuteRollbackPlanRequest>,
    ) -> Reply<ExecuteRollbackPlanResponse> {
        later("rollback plans")
    }

    async fn get_execution(&self, _: Request<GetExecutionRequest>) -> Reply<GetExecutionResponse> {
        later("executions")
    }

    async fn cancel_execution(
        &self,
        _: Request<CancelExecutionRequest>,
    ) -> Reply<CancelExecutionResponse> {
        later("executions")
    }

    async fn kill(&self, _: Request<KillRequest>) -> Reply<KillResponse> {
        later("the kill switch")
    }

    async fn undo_kill(&self, _: Request<UndoKillRequest>) -> Reply<UndoKillResponse> {
        later("the kill switch")
    }

    async fn schedule_change(
        &self,
        _: Request<ScheduleChangeRequest>,
    ) -> Reply<ScheduleChangeResponse> {
        later("scheduled changes")
    }

    async fn list_scheduled_changes(
        &self,
        _: Request<ListScheduledChangesRequest>,
    ) -> Reply<ListScheduledChangesResponse> {
        later("scheduled changes")
    }

    async fn cancel_scheduled_change(
        &self,
        _: Request<CancelScheduledChangeRequest>,
    ) -> Reply<CancelScheduledChangeResponse> {
        later("scheduled changes")
    }

    async fn create_ramp(&self, _: Request<CreateRampRequest>) -> Reply<CreateRampResponse> {
        later("ramps")
    }

    async fn get_ramp(&self, _: Request<GetRampRequest>) -> Reply<GetRampResponse> {
        later("ramps")
    }

    async fn list_ramps(&self, _: Request<ListRampsRequest>) -> Reply<ListRampsResponse> {
        later("ramps")
    }

    async fn pause_ramp(&self, _: Request<PauseRampRequest>) -> Reply<PauseRampResponse> {
        later("ramps")
    }

    async fn resume_ramp(&self, _: Request<ResumeRampRequest>) -> Reply<ResumeRampResponse> {
        later("ramps")
    }

    async fn rollback_ramp(&self, _: Request<RollbackRampRequest>) -> Reply<RollbackRampResponse> {
        later("ramps")
    }
}
