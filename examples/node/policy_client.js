'use strict';
// A small client of the gymserve policy service (gymserve.serving.v1.PolicyService).
//
// The service is loaded at run time from the repository's protos/ folder. Tensors are packed by
// hand: FLOAT32 observations as little-endian row-major bytes, INT64 / FLOAT32 / FLOAT64 actions
// read back the same way (the README's "Clients in other languages" spells the encoding out).

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'protos');
const PROTO_FILE = 'gymserve/serving/v1/policy_service.proto';

const ELEMENT_READERS = {
  DATA_TYPE_FLOAT32: { bytes: 4, read: (buffer, offset) => buffer.readFloatLE(offset) },
  DATA_TYPE_FLOAT64: { bytes: 8, read: (buffer, offset) => buffer.readDoubleLE(offset) },
  DATA_TYPE_INT64: { bytes: 8, read: (buffer, offset) => safeNumber(buffer.readBigInt64LE(offset)) },
};

/** The PolicyService client constructor, built from the .proto under `protoRoot`. */
function loadPolicyService(protoRoot = PROTO_ROOT) {
  const definition = protoLoader.loadSync(PROTO_FILE, {
    includeDirs: [protoRoot],
    keepCase: true, // field names as in the .proto: policy_name, episode_start, ...
    longs: String, // int64 fields (shapes, versions) arrive as decimal strings, never rounded
    enums: String,
    defaults: true, // an empty `shape` (a single discrete action) arrives as [], not undefined
  });
  return grpc.loadPackageDefinition(definition).gymserve.serving.v1.PolicyService;
}

/** A FLOAT32 tensor of a number array (one observation) or of nested arrays (a batch). */
function float32Tensor(observations) {
  const shape = shapeOf(observations);
  const values = [observations].flat(shape.length);
  const content = Buffer.alloc(values.length * 4);
  values.forEach((value, index) => content.writeFloatLE(value, index * 4));
  return { dtype: 'DATA_TYPE_FLOAT32', shape, content };
}

/** The nested-array value of a wire tensor: a plain number for shape [], arrays otherwise. */
function tensorValue(tensor) {
  const reader = ELEMENT_READERS[tensor.dtype];
  if (!reader) throw new Error(`unsupported tensor data type ${tensor.dtype}`);
  const shape = tensor.shape.map(Number);
  const count = shape.reduce((product, size) => product * size, 1);
  if (tensor.content.length !== count * reader.bytes) {
    throw new Error(`tensor of shape [${shape}] ${tensor.dtype} holds ${tensor.content.length} bytes`);
  }
  const values = Array.from({ length: count }, (_, index) => reader.read(tensor.content, index * reader.bytes));
  return nest(values, shape);
}

function shapeOf(array) {
  const shape = [];
  for (let level = array; Array.isArray(level); level = level[0]) shape.push(level.length);
  const count = shape.reduce((product, size) => product * size, 1);
  if ([array].flat(shape.length).length !== count) throw new Error('observations must be a rectangular array');
  return shape;
}

function nest(values, shape) {
  if (shape.length === 0) return values[0];
  const [size, ...rest] = shape;
  const stride = values.length / size;
  return Array.from({ length: size }, (_, row) => nest(values.slice(row * stride, (row + 1) * stride), rest));
}

function safeNumber(bigint) {
  const number = Number(bigint);
  if (!Number.isSafeInteger(number)) throw new Error(`int64 action ${bigint} does not fit a JavaScript number`);
  return number;
}

/** Actions from one server: `act` for single calls, `stream` for a control loop. */
class PolicyClient {
  constructor(address, { credentials = grpc.credentials.createInsecure(), timeoutMs = 10000 } = {}) {
    const PolicyService = loadPolicyService();
    this.stub = new PolicyService(address, credentials);
    this.timeoutMs = timeoutMs;
  }

  /** The action for one observation, or the actions for a batch; `seed` is a uint64 (number or string). */
  act(policy, observations, { mode = 'ACTION_MODE_GREEDY', seed } = {}) {
    const request = { policy_name: policy, observations: float32Tensor(observations), mode };
    if (seed !== undefined) request.seed = String(seed);
    return new Promise((resolve, reject) => {
      this.stub.Act(request, { deadline: Date.now() + this.timeoutMs }, (error, response) =>
        error ? reject(error) : resolve(tensorValue(response.actions)),
      );
    });
  }

  stream(policy, { mode = 'ACTION_MODE_GREEDY' } = {}) {
    return new StreamSession(this.stub.StreamAct(), policy, mode);
  }

  close() {
    this.stub.close();
  }
}

/** One StreamAct call: each `step` sends an observation and resolves to its action, in order. */
class StreamSession {
  constructor(call, policy, mode) {
    this.call = call;
    this.policy = policy;
    this.mode = mode;
    this.pending = [];
    call.on('data', (response) => this.pending.shift().resolve(response.act));
    call.on('error', (error) => this.pending.splice(0).forEach((step) => step.reject(error)));
  }

  step(observation, { episodeStart = false, episodeEnd = false } = {}) {
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.call.write({
        act: { policy_name: this.policy, observations: float32Tensor(observation), mode: this.mode },
        episode_start: episodeStart,
        episode_end: episodeEnd,
      });
    }).then((act) => ({ action: tensorValue(act.actions), version: Number(act.policy_version) }));
  }

  close() {
    this.call.end();
  }
}

module.exports = { PolicyClient, float32Tensor, loadPolicyService, tensorValue };
