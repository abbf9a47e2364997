// Receiving kb's webhooks: verify each delivery's Standard Webhooks signature with the reference
// `standardwebhooks` package before trusting a byte of it (docs/webhooks.md).
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import type { Schemas } from "./kb.js";

/** A change-feed event, exactly as an item of `GET /api/v1/changes`. */
export type ChangeEvent = Schemas["ChangeEvent"];

/**
 * The test event of `POST /api/v1/webhooks/{id}/ping`. The document describes deliveries in
 * prose only (it has no `webhooks` section), so this one is written out here.
 */
export interface PingEvent {
  id: string;
  type: "webhook.ping";
  at: string;
  data: { webhook_id: number };
}

export type Delivery = ChangeEvent | PingEvent;

function header(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  if (typeof value !== "string") throw new WebhookVerificationError(`missing or repeated ${name} header`);
  return value;
}

/**
 * Checks a delivery's signature (and that it is at most five minutes old) and returns the event.
 * `body` must be the raw bytes received, not JSON re-serialised. `secret` is the `whsec_…` shown
 * when the webhook was created (or its secret rotated). Throws `WebhookVerificationError` when
 * the delivery was not signed with that secret.
 */
export function verifyDelivery(secret: string, body: string | Buffer, headers: IncomingHttpHeaders): Delivery {
  const verified = new Webhook(secret).verify(body, {
    "webhook-id": header(headers, "webhook-id"),
    "webhook-timestamp": header(headers, "webhook-timestamp"),
    "webhook-signature": header(headers, "webhook-signature"),
  });
  if (typeof verified !== "object" || verified === null || !("type" in verified) || !("id" in verified)) {
    throw new WebhookVerificationError("a signed body that is not an event");
  }
  const event = verified as Delivery;
  // `webhook-id` is the event's id: the same on every attempt, so keep it to ignore repeats.
  if (event.id !== headers["webhook-id"]) throw new WebhookVerificationError("webhook-id is not the event's id");
  return event;
}

/**
 * A `node:http` request handler for a webhook endpoint: reads the raw body, verifies it, answers
 * 204 at once (slow work belongs after the answer) or 400 to a forgery, and hands the event on.
 */
export function receiver(secret: string, onEvent: (event: Delivery) => void) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      let event: Delivery;
      try {
        event = verifyDelivery(secret, Buffer.concat(chunks), req.headers);
      } catch (e) {
        if (!(e instanceof WebhookVerificationError)) throw e;
        res.writeHead(400).end();
        return;
      }
      res.writeHead(204).end();
      onEvent(event);
    });
  };
}
