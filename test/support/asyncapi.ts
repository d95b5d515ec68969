import fs from 'node:fs';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import YAML from 'yaml';
import { projectRoot } from '../../src/infra/paths.js';

/**
 * Checks a real-time frame against asyncapi.yml: the envelope, a documented type for the channel,
 * and the payload schema of that type. Every frame the test clients of test/support/events.ts get
 * runs this, as every HTTP response runs test/support/spec.ts.
 */
interface MessageObject {
  $ref?: string;
  name?: string;
  payload?: { $ref?: string };
}
type Document = {
  channels: Record<string, { messages: Record<string, MessageObject> }>;
  components: { messages: Record<string, MessageObject> };
};

const document = YAML.parse(fs.readFileSync(path.join(projectRoot(), 'asyncapi.yml'), 'utf8')) as Document;
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ strict: false, allErrors: true }));
ajv.addSchema(document, 'asyncapi');
const frameSchema = ajv.compile({ $ref: 'asyncapi#/components/schemas/Frame' });

const resolve = (message: MessageObject): MessageObject =>
  message.$ref ? document.components.messages[message.$ref.split('/').pop()!]! : message;

const validators = new Map<string, ValidateFunction>();

export interface Frame {
  type: string;
  id?: string;
  data: Record<string, unknown>;
}

/** Throws unless `frame` is documented for `channel` (events: SSE and long poll; ws: WebSocket). */
export function assertMatchesAsyncApi(channel: 'events' | 'ws', frame: Frame): void {
  if (!frameSchema(frame)) throw new Error(`frame envelope: ${ajv.errorsText(frameSchema.errors)}`);
  const messages = Object.values(document.channels[channel]!.messages)
    .map(resolve)
    .filter((message) => message.name === frame.type && !message.payload?.$ref?.includes('/Client'));
  const message = messages[0];
  if (!message?.payload?.$ref)
    throw new Error(`${channel}: event type "${frame.type}" not documented in asyncapi.yml`);
  const pointer = message.payload.$ref.slice(1);
  let validate = validators.get(pointer);
  if (!validate) {
    validate = ajv.compile({ $ref: `asyncapi#${pointer}` });
    validators.set(pointer, validate);
  }
  if (!validate(frame.data)) {
    throw new Error(
      `${channel} ${frame.type}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(frame.data)}`,
    );
  }
  const durable = ['message', 'member', 'read', 'reset'].includes(frame.type);
  if (durable !== (frame.id !== undefined))
    throw new Error(`${frame.type}: id ${durable ? 'missing' : 'unexpected'}`);
}

/** A client frame (what tests send) checked against the documented client frames. */
export function assertClientFrame(frame: Record<string, unknown>): void {
  const message = Object.values(document.channels.ws!.messages)
    .map(resolve)
    .find((candidate) => candidate.name === frame.type && candidate.payload?.$ref?.includes('/Client'));
  if (!message?.payload?.$ref) throw new Error(`client frame "${String(frame.type)}" not documented`);
  const validate = ajv.compile({ $ref: `asyncapi#${message.payload.$ref.slice(1)}` });
  if (!validate(frame)) throw new Error(`client frame: ${ajv.errorsText(validate.errors)}`);
}
