/**
 * onnxruntime-node, for every part of the product that runs a graph (import it from here, not from
 * the package).
 *
 * ONNX Runtime's official packages send telemetry to Microsoft on Linux and macOS since 1.29 (1DS:
 * a process-information event, session, model and error events, a persistent device identifier;
 * microsoft/onnxruntime#27379), on by default; in 1.30 each process also leaves an empty
 * /tmp/mat-debug-<pid>.log. A federated-learning node whose clients keep their data on the device
 * should not report home to a third party, so bfl-node opts out unless the operator chose
 * otherwise: `ORT_DISABLE_TELEMETRY=1` is ONNX Runtime's full opt-out, read once when the runtime
 * initialises, which onnxruntime-node does at the first session, after this module has run.
 * bin/bfl-node.js sets the same at its start, for the whole process: a worker thread's process.env
 * is a copy the native library does not see, so this line alone would not reach a worker that ran
 * a graph (none does today). An operator who wants ONNX Runtime's telemetry sets
 * ORT_DISABLE_TELEMETRY=0 (docs/decisions.md).
 */
process.env.ORT_DISABLE_TELEMETRY ??= '1';

export * as ort from 'onnxruntime-node';
