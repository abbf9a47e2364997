// A typed kb client: openapi-fetch over the types openapi-typescript generates from
// openapi/openapi.json (`npm run generate` writes src/generated/kb.d.ts; it is not committed).
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./generated/kb.js";

export type Schemas = components["schemas"];
export type Kb = Client<paths>;

/** A client of the kb at `baseUrl`; with `key`, every request carries it as a bearer token. */
export function connect(baseUrl: string, key?: string): Kb {
  return createClient<paths>({
    baseUrl,
    headers: key === undefined ? {} : { Authorization: `Bearer ${key}` },
  });
}

/** Every error of the API is problem+json with a stable `code`: make one readable. */
export function problem(status: number, body: Schemas["Problem"] | undefined): Error {
  return new Error(body ? `${status} ${body.code}: ${body.detail}` : `unexpected status ${status}`);
}
