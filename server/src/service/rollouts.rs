//! `flagwire.v1.RolloutService`: single-flag canary rollouts (a view of one-flag releases,
//! [`crate::releases`]) and the rollback manager ([`crate::manager`]): the kill switch,
//! rollback plans and executions, scheduled changes and ramps.

use super::{meta, required};
use crate::manager::Manager;
use crate::releases::{Command, Releases};
use flagwire_core::release::{EVERYONE, wire};
use flagwire_proto::grpc::rollout_service_server::RolloutService;
use flagwire_proto::v1::*;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The RolloutService handlers.
pub struct RolloutApi {
    releases: Arc<Releases>,
    manager: Arc<Manager>,
}

impl RolloutApi {
    /// Handlers over `releases` and `manager`.
    pub fn new(releases: Arc<Releases>, manager: Arc<Manager>) -> Self {
        Self { releases, manager }
    }

    async fn act(&self, r: &Request<impl Identified>, command: Command) -> Result<Rollout, Status> {
        let m = meta(r, r.get_ref().reason())?;
        let id = r.get_ref().id();
        if id.is_empty() {
            return Err(Status::invalid_argument("invalid argument: id: required"));
        }
        rollout(self.get(id, 0)?)?;
        rollout(self.releases.act(&m, id, command).await?)
    }

    /// Release `id`, or NOT_FOUND in the Rollout API's terms.
    fn get(&self, id: &str, windows: usize) -> Result<Release, Status> {
        self.releases
            .get(id, windows)
            .map_err(|_| Status::not_found(format!("rollout {id:?} not found")))
    }
}

/// The rollout view of a release; a release a rollout cannot express is refused, so the
/// Rollout API never shows half of one.
fn rollout(r: Release) -> Result<Rollout, Status> {
    if !wire::is_rollout(&r) {
        return Err(Status::failed_precondition(format!(
            "{:?} is a release of {} flags or stages a rollout cannot express: use ReleaseService",
            r.id,
            r.flags.len()
        )));
    }
    Ok(wire::to_rollout(&r))
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

#[tonic::async_trait]
impl RolloutService for RolloutApi {
    async fn create_rollout(
        &self,
        r: Request<CreateRolloutRequest>,
    ) -> Reply<CreateRolloutResponse> {
        let m = meta(&r, "")?;
        let rollout = required(r.into_inner().rollout, "rollout")?;
        let created = self
            .releases
            .act_new(&m, Command::CreateRollout(Box::new(rollout)))
            .await?;
        let rollout = Some(wire::to_rollout(&created));
        Ok(Response::new(CreateRolloutResponse { rollout }))
    }

    async fn start_rollout(&self, r: Request<StartRolloutRequest>) -> Reply<StartRolloutResponse> {
        let mut rollout = self.act(&r, Command::Start).await?;
        if rollout
            .steps
            .first()
            .is_some_and(|s| s.basis_points >= EVERYONE)
        {
            // A rollout of only 100 % completes when it starts, as it always has.
            rollout = self.act(&r, Command::Promote).await?;
        }
        let rollout = Some(rollout);
        Ok(Response::new(StartRolloutResponse { rollout }))
    }

    async fn get_rollout(&self, r: Request<GetRolloutRequest>) -> Reply<GetRolloutResponse> {
        let r = r.into_inner();
        let limit = r.window_limit.min(10_000) as usize;
        let rollout = Some(rollout(self.get(&r.id, limit)?)?);
        Ok(Response::new(GetRolloutResponse { rollout }))
    }

    async fn list_rollouts(&self, r: Request<ListRolloutsRequest>) -> Reply<ListRolloutsResponse> {
        let r = r.into_inner();
        let rollouts = self
            .releases
            .list(&r.environment, &r.flag_key)
            .iter()
            .filter(|r| wire::is_rollout(r))
            .map(wire::to_rollout)
            .collect();
        Ok(Response::new(ListRolloutsResponse { rollouts }))
    }

    async fn pause_rollout(&self, r: Request<PauseRolloutRequest>) -> Reply<PauseRolloutResponse> {
        let rollout = Some(self.act(&r, Command::Pause).await?);
        Ok(Response::new(PauseRolloutResponse { rollout }))
    }

    async fn resume_rollout(
        &self,
        r: Request<ResumeRolloutRequest>,
    ) -> Reply<ResumeRolloutResponse> {
        let rollout = Some(self.act(&r, Command::Resume).await?);
        Ok(Response::new(ResumeRolloutResponse { rollout }))
    }

    async fn promote_rollout(
        &self,
        r: Request<PromoteRolloutRequest>,
    ) -> Reply<PromoteRolloutResponse> {
        let rollout = Some(self.act(&r, Command::Promote).await?);
        Ok(Response::new(PromoteRolloutResponse { rollout }))
    }

    async fn rollback_rollout(
        &self,
        r: Request<RollbackRolloutRequest>,
    ) -> Reply<RollbackRolloutResponse> {
        let rollout = Some(self.act(&r, Command::Rollback).await?);
        Ok(Response::new(RollbackRolloutResponse { rollout }))
    }

    async fn create_rollback_plan(
        &self,
        r: Request<CreateRollbackPlanRequest>,
    ) -> Reply<CreateRollbackPlanResponse> {
        let m = meta(&r, "")?;
        let plan = required(r.into_inner().plan, "plan")?;
        let plan = Some(self.manager.create_plan(&m, plan).await?);
        Ok(Response::new(CreateRollbackPlanResponse { plan }))
    }

    async fn list_rollback_plans(
        &self,
        _: Request<ListRollbackPlansRequest>,
    ) -> Reply<ListRollbackPlansResponse> {
        Ok(Response::new(ListRollbackPlansResponse {
            plans: self.manager.plans(),
        }))
    }

    async fn execute_rollback_plan(
        &self,
        r: Request<ExecuteRollbackPlanRequest>,
    ) -> Reply<ExecuteRollbackPlanResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let r = r.into_inner();
        let at =
            r.at.map(|t| {
                std::time::SystemTime::try_from(t).map_err(|_| {
                    Status::invalid_argument("invalid argument: at: not a valid timestamp")
                })
            })
            .transpose()?;
        let execution = Some(
            self.manager
                .execute(&m, &r.plan_id, at, "", r.force)
                .await?,
        );
        Ok(Response::new(ExecuteRollbackPlanResponse { execution }))
    }

    async fn get_execution(&self, r: Request<GetExecutionRequest>) -> Reply<GetExecutionResponse> {
        let execution = Some(self.manager.execution(&r.get_ref().id)?);
        Ok(Response::new(GetExecutionResponse { execution }))
    }

    async fn cancel_execution(
        &self,
        r: Request<CancelExecutionRequest>,
    ) -> Reply<CancelExecutionResponse> {
        let m = meta(&r, "")?;
        let execution = Some(self.manager.cancel(&m, &r.get_ref().id).await?);
        Ok(Response::new(CancelExecutionResponse { execution }))
    }

    async fn kill(&self, r: Request<KillRequest>) -> Reply<KillResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let execution = Some(self.manager.kill(&m, r.into_inner().scope).await?);
        Ok(Response::new(KillResponse { execution }))
    }

    async fn undo_kill(&self, r: Request<UndoKillRequest>) -> Reply<UndoKillResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let execution = Some(
            self.manager
                .undo_kill(&m, &r.get_ref().execution_id)
                .await?,
        );
        Ok(Response::new(UndoKillResponse { execution }))
    }

    async fn schedule_change(
        &self,
        r: Request<ScheduleChangeRequest>,
    ) -> Reply<ScheduleChangeResponse> {
        let m = meta(&r, "")?;
        let change = required(r.into_inner().change, "change")?;
        let change = Some(self.manager.schedule(&m, change).await?);
        Ok(Response::new(ScheduleChangeResponse { change }))
    }

    async fn list_scheduled_changes(
        &self,
        r: Request<ListScheduledChangesRequest>,
    ) -> Reply<ListScheduledChangesResponse> {
        let r = r.into_inner();
        Ok(Response::new(ListScheduledChangesResponse {
            changes: self.manager.scheduled(&r.flag_key, r.include_done),
        }))
    }

    async fn cancel_scheduled_change(
        &self,
        r: Request<CancelScheduledChangeRequest>,
    ) -> Reply<CancelScheduledChangeResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let change = Some(self.manager.cancel_scheduled(&m, &r.get_ref().id).await?);
        Ok(Response::new(CancelScheduledChangeResponse { change }))
    }

    async fn create_ramp(&self, r: Request<CreateRampRequest>) -> Reply<CreateRampResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let ramp = required(r.into_inner().ramp, "ramp")?;
        let ramp = Some(self.manager.create_ramp(&m, ramp).await?);
        Ok(Response::new(CreateRampResponse { ramp }))
    }

    async fn get_ramp(&self, r: Request<GetRampRequest>) -> Reply<GetRampResponse> {
        let ramp = Some(self.manager.ramp(&r.get_ref().id)?);
        Ok(Response::new(GetRampResponse { ramp }))
    }

    async fn list_ramps(&self, r: Request<ListRampsRequest>) -> Reply<ListRampsResponse> {
        Ok(Response::new(ListRampsResponse {
            ramps: self.manager.ramps(&r.get_ref().flag_key),
        }))
    }

    async fn pause_ramp(&self, r: Request<PauseRampRequest>) -> Reply<PauseRampResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let ramp = Some(
            self.manager
                .ramp_action(&m, &r.get_ref().id, Some(true))
                .await?,
        );
        Ok(Response::new(PauseRampResponse { ramp }))
    }

    async fn resume_ramp(&self, r: Request<ResumeRampRequest>) -> Reply<ResumeRampResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let ramp = Some(
            self.manager
                .ramp_action(&m, &r.get_ref().id, Some(false))
                .await?,
        );
        Ok(Response::new(ResumeRampResponse { ramp }))
    }

    async fn rollback_ramp(&self, r: Request<RollbackRampRequest>) -> Reply<RollbackRampResponse> {
        let m = meta(&r, &r.get_ref().reason)?;
        let ramp = Some(self.manager.ramp_action(&m, &r.get_ref().id, None).await?);
        Ok(Response::new(RollbackRampResponse { ramp }))
    }
}
