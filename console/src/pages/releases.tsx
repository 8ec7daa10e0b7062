// Releases and rollouts (a rollout is a one-flag release): state, stage, environment.
import { ReleaseState, type Release } from "../gen/flagwire/v1/release_pb.js";
import { enumName } from "../format.js";
import { releaseHref } from "../router.js";
import { ErrorText, Page, Time, usePoll, useSession } from "../ui.js";

const States = ReleaseState as unknown as Record<number, string>;

/** Where a release is: "stage 2 of 3: canary 5%". */
export function stageText(r: Release): string {
  if (r.state === ReleaseState.DRAFT) return "not started";
  const stage = r.stages[r.currentStage];
  return `stage ${r.currentStage + 1} of ${r.stages.length}${stage?.name ? `: ${stage.name}` : ""}`;
}

/** The releases list. */
export function ReleasesPage() {
  const { api } = useSession();
  const releases = usePoll(async () => (await api.releases.listReleases({})).releases, 2000, [api]);
  return (
    <Page title="Releases">
      <p class="muted">Every staged release, canary rollouts included (a rollout is a release of one flag).</p>
      <ErrorText error={releases.error} />
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Release</th>
              <th scope="col">Environment</th>
              <th scope="col">Flags</th>
              <th scope="col">State</th>
              <th scope="col">Stage</th>
              <th scope="col">Latest decision</th>
              <th scope="col">Started</th>
            </tr>
          </thead>
          <tbody>
            {releases.data?.map((r) => (
              <tr key={r.id}>
                <th scope="row">
                  <a href={releaseHref(r.id)}>{r.name || r.id}</a>
                  <div class="muted small">{r.id}</div>
                </th>
                <td>{r.environment}</td>
                <td>{r.flags.map((f) => f.flagKey).join(", ")}</td>
                <td>
                  <span class={`state state-${States[r.state]?.toLowerCase() ?? ""}`}>{enumName(States, r.state)}</span>
                </td>
                <td>{stageText(r)}</td>
                <td>{r.latestDecision ? `${r.latestDecision.reasonCode}` : "—"}</td>
                <td>
                  <Time t={r.startTime} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {releases.data?.length === 0 && <p class="muted">No releases yet (create them with the CLI, grpcurl or a flags-as-code file).</p>}
    </Page>
  );
}
