//! `flagwire.v1.ReleaseService`: releases ([`crate::releases`]).

use super::{meta, required};
use crate::releases::{Command, Releases};
use flagwire_proto::grpc::release_service_server::ReleaseService;
use flagwire_proto::v1::*;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The ReleaseService handlers.
pub struct ReleaseApi {
    releases: Arc<Releases>,
}

impl ReleaseApi {
    /// Handlers over `releases`.
    pub fn new(releases: Arc<Releases>) -> Self {
        Self { releases }
    }

    async fn act(
        &self,
        r: &Request<impl Named>,
        command: Command,
        reason_required: bool,
    ) -> Result<Release, Status> {
        let (id, reason) = (r.get_ref().id(), r.get_ref().reason());
        if id.is_empty() {
            return Err(Status::invalid_argument("invalid argument: id: required"));
        }
        if reason_required && reason.trim().is_empty() {
            return Err(Status::invalid_argument(
                "invalid argument: reason: required (recorded with the decision)",
            ));
        }
        let m = meta(r, reason)?;
        Ok(self.releases.act(&m, id, command).await?)
    }
}

/// Requests naming a release, with a reason.
trait Named {
    fn id(&self) -> &str;
    fn reason(&self) -> &str;
}

macro_rules! named {
    ($($t:ty),*) => {$(
        impl Named for $t {
            fn id(&self) -> &str { &self.id }
            fn reason(&self) -> &str { &self.reason }
        }
    )*};
}
named!(
    StartReleaseRequest,
    ApproveStageRequest,
    PauseReleaseRequest,
    ResumeReleaseRequest,
    PromoteReleaseRequest,
    RollbackReleaseRequest
);

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl ReleaseService for ReleaseApi {
    async fn create_release(
        &self,
        r: Request<CreateReleaseRequest>,
    ) -> Reply<CreateReleaseResponse> {
        let m = meta(&r, "")?;
        let release = required(r.into_inner().release, "release")?;
        let release = Some(
            self.releases
                .act_new(&m, Command::Create(Box::new(release)))
                .await?,
        );
        Ok(Response::new(CreateReleaseResponse { release }))
    }

    async fn start_release(&self, r: Request<StartReleaseRequest>) -> Reply<StartReleaseResponse> {
        let release = Some(self.act(&r, Command::Start, false).await?);
        Ok(Response::new(StartReleaseResponse { release }))
    }

    async fn get_release(&self, r: Request<GetReleaseRequest>) -> Reply<GetReleaseResponse> {
        let r = r.into_inner();
        let limit = r.window_limit.min(10_000) as usize;
        let release = Some(self.releases.get(&r.id, limit)?);
        Ok(Response::new(GetReleaseResponse { release }))
    }

    async fn list_releases(&self, r: Request<ListReleasesRequest>) -> Reply<ListReleasesResponse> {
        let r = r.into_inner();
        let releases = self.releases.list(&r.environment, &r.flag_key);
        Ok(Response::new(ListReleasesResponse { releases }))
    }

    async fn approve_stage(&self, r: Request<ApproveStageRequest>) -> Reply<ApproveStageResponse> {
        let stage = r.get_ref().stage;
        let release = Some(self.act(&r, Command::Approve(stage), true).await?);
        Ok(Response::new(ApproveStageResponse { release }))
    }

    async fn pause_release(&self, r: Request<PauseReleaseRequest>) -> Reply<PauseReleaseResponse> {
        let release = Some(self.act(&r, Command::Pause, false).await?);
        Ok(Response::new(PauseReleaseResponse { release }))
    }

    async fn resume_release(
        &self,
        r: Request<ResumeReleaseRequest>,
    ) -> Reply<ResumeReleaseResponse> {
        let release = Some(self.act(&r, Command::Resume, false).await?);
        Ok(Response::new(ResumeReleaseResponse { release }))
    }

    async fn promote_release(
        &self,
        r: Request<PromoteReleaseRequest>,
    ) -> Reply<PromoteReleaseResponse> {
        let release = Some(self.act(&r, Command::Promote, false).await?);
        Ok(Response::new(PromoteReleaseResponse { release }))
    }

    async fn rollback_release(
        &self,
        r: Request<RollbackReleaseRequest>,
    ) -> Reply<RollbackReleaseResponse> {
        let command = match r.get_ref().flag_key.as_str() {
            "" if !r.get_ref().plan_id.is_empty() => {
                return Err(Status::invalid_argument(
                    "invalid argument: plan_id: only with flag_key (a full rollback runs the \
                     policy's rollbackPlanId)",
                ));
            }
            "" => Command::Rollback,
            flag => Command::RollbackFlag {
                flag: flag.to_owned(),
                hold: r.get_ref().hold,
                plan: r.get_ref().plan_id.clone(),
            },
        };
        let release = Some(self.act(&r, command, true).await?);
        Ok(Response::new(RollbackReleaseResponse { release }))
    }
}
