// Adam / AdamW with parameter groups, the one optimizer of every network in the package. Its state
// lives in float32 arrays on the JS side, so it saves and restores exactly and one update is one
// loop over the parameters. Parameters are anything that can be read and written as a flat float32
// array: typed-array weights of the MLPs (updated in place) or TensorFlow.js variables (see
// `variableParameter` in tensors.ts). Never loads TensorFlow.js itself.

import { checkpointTensor, type CheckpointContent, type CheckpointTensor } from './checkpoint.js';

/** A trainable array of weights as the optimizer sees it. */
export interface Parameter {
  /** Stable name (checkpoints, error messages). */
  readonly name: string;
  /** Number of floats. */
  readonly size: number;
  /**
   * The current values. May be the live storage (typed-array weights) or a fresh copy (tfjs
   * variables); the optimizer writes its result back with `write` either way.
   */
  read(): Float32Array;
  /** Stores new values (a no-op when `values` is the live storage `read` returned). */
  write(values: Float32Array): void;
}

/** A parameter whose storage is the given array (updated in place). */
export function arrayParameter(name: string, values: Float32Array): Parameter {
  return {
    name,
    size: values.length,
    read: () => values,
    write: (v) => {
      if (v !== values) values.set(v);
    },
  };
}

/**
 * A group of parameters sharing a learning rate and a trainable switch (e.g. a pretrained encoder
 * frozen first, then fine-tuned at a tenth of the head's rate).
 */
export interface ParameterGroup {
  /** Group name (`encoder`, `policy`, ...), unique within the optimizer. */
  readonly name: string;
  /** The group's parameters, in the order their gradients are passed. */
  readonly params: readonly Parameter[];
  /** Learning rate of the group (the schedule may change it with `setLearningRate`). */
  learningRate: number;
  /** Whether the group is updated; a frozen group keeps its weights and moments. Default true. */
  trainable?: boolean;
  /** Decoupled weight decay per step (AdamW: p −= lr · weightDecay · p); default the optimizer's. */
  weightDecay?: number;
}

/** Options of `Adam`. */
export interface AdamOptions {
  /** Decay rate of the first-moment estimate, default 0.9. */
  beta1?: number;
  /** Decay rate of the second-moment estimate, default 0.999. */
  beta2?: number;
  /** Added to the root of the second moment in the denominator, default 1e-8. */
  epsilon?: number;
  /** Decoupled weight decay (AdamW), per step: p −= lr · weightDecay · p. Default 0. */
  weightDecay?: number;
  /**
   * Decay of an exponential moving average of the weights kept beside them (Polyak averaging;
   * 0 = off, the default). Per step the average moves by 1 − min(decay, (1 + t) / (10 + t)),
   * so early steps are not dominated by the initial weights.
   */
  averageDecay?: number;
  /** Clip the global gradient norm (over the trainable groups) to this value; 0 = off. Default 0. */
  clipNorm?: number;
}

/** Serialisable optimizer state. */
export interface AdamState {
  /** Updates taken per group (Adam's bias-correction counter), group order. */
  steps: number[];
  /** First-moment estimates, one array per parameter (flat parameter order). */
  m: Float32Array[];
  /** Second-moment estimates, one array per parameter. */
  v: Float32Array[];
  /** Moving average of the weights, one array per parameter, or null when averaging is off. */
  average: Float32Array[] | null;
}

interface GroupSlot {
  readonly name: string;
  learningRate: number;
  trainable: boolean;
  readonly weightDecay: number;
  /** Index of the group's first parameter in the flat order. */
  readonly first: number;
  readonly count: number;
}

/**
 * Adam (PyTorch's update, with optional decoupled weight decay, global-norm clipping and weight
 * averaging) over parameter groups. Each group has its own learning rate, bias-correction counter
 * and trainable switch; gradients are passed as one flat list (null for a frozen group's
 * parameters).
 * @example
 * const opt = new Adam([{ name: 'net', params: mlp.parameters(), learningRate: 3e-4 }], { clipNorm: 0.5 });
 * opt.apply(grads); // grads[k] belongs to parameter k
 */
export class Adam {
  /** Every parameter, groups in order. */
  readonly params: readonly Parameter[];
  private readonly groups: GroupSlot[];
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly clipNorm: number;
  private readonly averageDecay: number;
  private steps: number[];
  private m: Float32Array[];
  private v: Float32Array[];
  private average: Float32Array[] | null;

  /**
   * @param groups - parameter groups (or one list of parameters, trained at `learningRate` 1e-3
   *   until `setLearningRate`).
   * @param options - PyTorch's defaults: betas 0.9 / 0.999, epsilon 1e-8, no decay, no clipping.
   * @throws {RangeError} on duplicate group names or an averageDecay outside [0, 1).
   */
  constructor(groups: readonly ParameterGroup[] | readonly Parameter[], options: AdamOptions = {}) {
    const list: readonly ParameterGroup[] =
      groups.length > 0 && 'params' in groups[0]
        ? (groups as readonly ParameterGroup[])
        : [{ name: 'all', params: groups as readonly Parameter[], learningRate: 1e-3 }];
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.clipNorm = options.clipNorm ?? 0;
    this.averageDecay = options.averageDecay ?? 0;
    if (!(this.averageDecay >= 0 && this.averageDecay < 1))
      throw new RangeError(`averageDecay must be in [0, 1), got ${this.averageDecay}`);
    const params: Parameter[] = [];
    this.groups = [];
    for (const g of list) {
      if (this.groups.some((s) => s.name === g.name))
        throw new RangeError(`optimizer: duplicate parameter group ${g.name}`);
      this.groups.push({
        name: g.name,
        learningRate: g.learningRate,
        trainable: g.trainable ?? true,
        weightDecay: g.weightDecay ?? options.weightDecay ?? 0,
        first: params.length,
        count: g.params.length,
      });
      params.push(...g.params);
    }
    this.params = params;
    this.steps = this.groups.map(() => 0);
    this.m = params.map((p) => new Float32Array(p.size));
    this.v = params.map((p) => new Float32Array(p.size));
    this.average = this.averageDecay > 0 ? params.map((p) => Float32Array.from(p.read())) : null;
  }

  /** Names of the groups, in order. */
  get groupNames(): string[] {
    return this.groups.map((g) => g.name);
  }

  private group(name: string): GroupSlot {
    const g = this.groups.find((s) => s.name === name);
    if (g === undefined)
      throw new RangeError(
        `optimizer has no parameter group ${name} (groups: ${this.groupNames.join(', ')})`,
      );
    return g;
  }

  /** Sets the learning rate of one group, or of every group when `group` is omitted. */
  setLearningRate(lr: number, group?: string): void {
    if (group === undefined) for (const g of this.groups) g.learningRate = lr;
    else this.group(group).learningRate = lr;
  }

  /** The learning rate of a group (default: the first). */
  learningRate(group?: string): number {
    return group === undefined ? this.groups[0].learningRate : this.group(group).learningRate;
  }

  /** Freezes (false) or unfreezes (true) a group. */
  setTrainable(group: string, trainable: boolean): void {
    this.group(group).trainable = trainable;
  }

  /** Whether a group is updated. */
  isTrainable(group: string): boolean {
    return this.group(group).trainable;
  }

  /**
   * Applies one update. `grads[k]` is the gradient of parameter `k` (flat order); entries of
   * frozen groups are ignored and may be null. Returns the global gradient norm of the trainable
   * groups before clipping; non-finite gradients skip the update and return NaN.
   * @throws {RangeError} when a trainable parameter's gradient is missing or mis-sized.
   */
  apply(grads: ReadonlyArray<Float32Array | null>): number {
    if (grads.length !== this.params.length)
      throw new RangeError(
        `optimizer: ${grads.length} gradients for ${this.params.length} parameters`,
      );
    let sq = 0;
    for (const g of this.groups) {
      if (!g.trainable) continue;
      for (let k = g.first; k < g.first + g.count; k++) {
        const a = grads[k];
        if (a === null || a.length !== this.params[k].size)
          throw new RangeError(
            `optimizer: gradient of ${this.params[k].name} is ${a === null ? 'missing' : `of size ${a.length}, expected ${this.params[k].size}`}`,
          );
        for (let i = 0; i < a.length; i++) sq += a[i] * a[i];
      }
    }
    const norm = Math.sqrt(sq);
    if (!Number.isFinite(norm)) return NaN;
    const scale = this.clipNorm > 0 && norm > this.clipNorm ? this.clipNorm / norm : 1;
    const b1 = this.beta1;
    const b2 = this.beta2;
    for (let gi = 0; gi < this.groups.length; gi++) {
      const g = this.groups[gi];
      if (!g.trainable) continue;
      const step = ++this.steps[gi];
      const lr = g.learningRate;
      const c1 = 1 - Math.pow(b1, step);
      const c2 = 1 - Math.pow(b2, step);
      const decay = 1 - lr * g.weightDecay;
      const avgKeep = Math.min(this.averageDecay, (1 + step) / (10 + step));
      for (let k = g.first; k < g.first + g.count; k++) {
        const param = this.params[k];
        const p = param.read();
        const m = this.m[k];
        const vv = this.v[k];
        const gk = grads[k] as Float32Array;
        for (let i = 0; i < p.length; i++) {
          const gv = gk[i] * scale;
          const mi = b1 * m[i] + (1 - b1) * gv;
          const vi = b2 * vv[i] + (1 - b2) * gv * gv;
          m[i] = mi;
          vv[i] = vi;
          p[i] = p[i] * decay - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + this.epsilon);
        }
        if (this.average !== null) {
          const a = this.average[k];
          for (let i = 0; i < p.length; i++) a[i] = avgKeep * a[i] + (1 - avgKeep) * p[i];
        }
        param.write(p);
      }
    }
    return norm;
  }

  /** A copy of the state (for checkpoints). */
  getState(): AdamState {
    return {
      steps: this.steps.slice(),
      m: this.m.map((a) => a.slice()),
      v: this.v.map((a) => a.slice()),
      average: this.average?.map((a) => a.slice()) ?? null,
    };
  }

  /** A copy of the moving average of the weights (flat parameter order), or null when it is off. */
  averageWeights(): Float32Array[] | null {
    return this.average?.map((a) => a.slice()) ?? null;
  }

  /** Restores a state from `getState`. @throws {RangeError} on a size or layout mismatch. */
  setState(state: AdamState): void {
    const n = this.params.length;
    if (state.steps.length !== this.groups.length)
      throw new RangeError(
        `optimizer state has ${state.steps.length} parameter groups, this optimizer ${this.groups.length}`,
      );
    if (state.m.length !== n || state.v.length !== n)
      throw new RangeError('optimizer state has another number of parameters');
    state.m.forEach((a, k) => {
      if (a.length !== this.params[k].size || state.v[k].length !== a.length)
        throw new RangeError(`optimizer state of ${this.params[k].name} has the wrong size`);
    });
    if ((state.average !== null) !== this.averageDecay > 0)
      throw new RangeError(
        `optimizer state ${state.average === null ? 'lacks' : 'has'} a weight average, this optimizer ${this.averageDecay > 0 ? 'keeps one' : 'keeps none'}`,
      );
    state.average?.forEach((a, k) => {
      if (a.length !== this.params[k].size)
        throw new RangeError(`weight average of ${this.params[k].name} has the wrong size`);
    });
    this.steps = state.steps.slice();
    this.m = state.m.map((a) => a.slice());
    this.v = state.v.map((a) => a.slice());
    this.average = state.average?.map((a) => a.slice()) ?? null;
  }

  /**
   * The state as named checkpoint tensors: `<prefix>.steps` (per group), `<prefix>.m.<param>`,
   * `<prefix>.v.<param>` and, with averaging, `<prefix>.average.<param>`.
   */
  stateTensors(prefix: string): Map<string, CheckpointTensor> {
    const out = new Map<string, CheckpointTensor>();
    out.set(`${prefix}.steps`, Float64Array.from(this.steps));
    this.params.forEach((p, k) => {
      out.set(`${prefix}.m.${p.name}`, this.m[k].slice());
      out.set(`${prefix}.v.${p.name}`, this.v[k].slice());
      if (this.average !== null) out.set(`${prefix}.average.${p.name}`, this.average[k].slice());
    });
    return out;
  }

  /**
   * Restores the state saved by `stateTensors` from a checkpoint read from `dir`.
   * @throws {CheckpointError} naming `dir` when a tensor is missing or mis-sized.
   */
  loadStateTensors(dir: string, content: CheckpointContent<unknown>, prefix: string): void {
    const steps = checkpointTensor(
      dir,
      content,
      `${prefix}.steps`,
      Float64Array,
      this.groups.length,
    );
    const take = (kind: string): Float32Array[] =>
      this.params.map((p) =>
        checkpointTensor(dir, content, `${prefix}.${kind}.${p.name}`, Float32Array, p.size),
      );
    this.setState({
      steps: Array.from(steps),
      m: take('m'),
      v: take('v'),
      average: this.average === null ? null : take('average'),
    });
  }
}
