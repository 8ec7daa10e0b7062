// Hash routing (#/flags/checkout): the server serves one page, and a few lines of matching
// cover every route the console has, so no router library is worth its weight here.
import { useEffect, useState } from "preact/hooks";

/** A parsed location: the page and, for detail pages, the object's id. */
export interface Route {
  page: string;
  id: string;
}

/** Parses `#/releases/r-1` into { page: "release", id: "r-1" }. */
export function parse(hash: string): Route {
  const [section = "flags", ...rest] = hash.replace(/^#\/?/, "").split("/");
  const id = decodeURIComponent(rest.join("/"));
  if (section === "flags" && id) return { page: "flag", id };
  if (section === "releases" && id) return { page: "release", id };
  return { page: section || "flags", id };
}

/** The current route, updated on navigation; moves focus to the page so keyboard users land on it. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(window.location.hash));
  useEffect(() => {
    const onChange = () => {
      setRoute(parse(window.location.hash));
      document.getElementById("main")?.focus();
    };
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

/** The link to a flag's page. */
export const flagHref = (key: string) => `#/flags/${encodeURIComponent(key)}`;
/** The link to a release's page. */
export const releaseHref = (id: string) => `#/releases/${encodeURIComponent(id)}`;
