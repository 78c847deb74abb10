/**
 * A small ONNX graph builder over onnx-proto (the ONNX protobuf schema for protobufjs). Enough
 * for the graphs we generate: typed inputs with symbolic dimensions, nodes with attributes,
 * constants and initializers, outputs. Opset 17 (ReduceSum takes its axes as an input).
 */
import pkg from 'onnx-proto';

const { onnx } = pkg;

export type ElemType = 'float' | 'double';
export type Dim = number | string;

const DT = { float: onnx.TensorProto.DataType.FLOAT, double: onnx.TensorProto.DataType.DOUBLE, int64: onnx.TensorProto.DataType.INT64, bool: onnx.TensorProto.DataType.BOOL };
const AT = onnx.AttributeProto.AttributeType;

export type Attr = number | number[] | string | { float: number } | { type: 'float' | 'double' | 'int64' | 'bool' } | { graph: InstanceType<typeof onnx.GraphProto> };

export const OPSET = 17;

export class GraphBuilder {
  readonly elem: ElemType;
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private counter = 0;
  /** Prefix of generated names: a subgraph's (a Loop body) must not shadow its outer graph's. */
  private readonly prefix: string;

  constructor(elem: ElemType = 'float', prefix = '') {
    this.elem = elem;
    this.prefix = prefix;
  }

  private valueInfo(name: string, dims: Dim[], type: keyof typeof DT) {
    return onnx.ValueInfoProto.create({
      name,
      type: onnx.TypeProto.create({
        tensorType: onnx.TypeProto.Tensor.create({
          elemType: DT[type],
          shape: onnx.TensorShapeProto.create({ dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) }),
        }),
      }),
    });
  }

  input(name: string, dims: Dim[], type: keyof typeof DT = this.elem): string {
    this.inputs.push(this.valueInfo(name, dims, type));
    return name;
  }

  output(name: string, dims: Dim[], type: keyof typeof DT = this.elem): void {
    this.outputs.push(this.valueInfo(name, dims, type));
  }

  /** A named tensor stored in the model (parameters of an exported model). */
  initializer(name: string, dims: number[], values: Float32Array | Float64Array): string {
    const t = onnx.TensorProto.create({ name, dims, dataType: values instanceof Float64Array ? DT.double : DT.float });
    t.rawData = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    this.initializers.push(t);
    return name;
  }

  constInt64(values: number[]): string {
    const name = `${this.prefix}c${this.counter++}`;
    const t = onnx.TensorProto.create({ name, dims: [values.length], dataType: DT.int64 });
    t.rawData = new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer);
    this.initializers.push(t);
    return name;
  }

  /** A scalar of the graph's element type. */
  constScalar(value: number): string {
    const name = `${this.prefix}c${this.counter++}`;
    const arr = this.elem === 'double' ? Float64Array.of(value) : Float32Array.of(value);
    const t = onnx.TensorProto.create({ name, dims: [], dataType: DT[this.elem] });
    t.rawData = new Uint8Array(arr.buffer);
    this.initializers.push(t);
    return name;
  }

  /** Add a node; returns its (first) output name. Several outputs (a Loop's) are named by the caller. */
  node(op: string, inputs: string[], attrs: Record<string, Attr> = {}, output?: string | string[]): string {
    const outs = Array.isArray(output) ? output : [output ?? `${this.prefix}t${this.counter++}_${op}`];
    const attribute = Object.entries(attrs).map(([name, v]) => {
      if (typeof v === 'number') return onnx.AttributeProto.create({ name, type: AT.INT, i: v });
      if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: AT.INTS, ints: v });
      if (typeof v === 'string') return onnx.AttributeProto.create({ name, type: AT.STRING, s: new TextEncoder().encode(v) });
      if ('float' in v) return onnx.AttributeProto.create({ name, type: AT.FLOAT, f: v.float });
      if ('graph' in v) return onnx.AttributeProto.create({ name, type: AT.GRAPH, g: v.graph });
      return onnx.AttributeProto.create({ name, type: AT.INT, i: DT[v.type] });
    });
    this.nodes.push(onnx.NodeProto.create({ opType: op, input: inputs, output: outs, attribute, name: `${this.prefix}${op}_${this.counter++}` }));
    return outs[0];
  }

  /** The graph alone: the body of a Loop (values of the outer graph are visible inside it). */
  graph(graphName: string): InstanceType<typeof onnx.GraphProto> {
    return onnx.GraphProto.create({ name: graphName, node: this.nodes, input: this.inputs, output: this.outputs, initializer: this.initializers });
  }

  build(graphName: string): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'bfl-node',
      opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: OPSET })],
      graph: this.graph(graphName),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
