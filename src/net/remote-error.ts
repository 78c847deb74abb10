/** A refusal a peer sent back: its error code and message (the request/response protocols of
 * net/reqres.ts and the simulator's network raise it). Apart from reqres.ts so that the node's
 * logic and the simulator do not load libp2p's stream utilities with it. */
export class RemoteError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'RemoteError';
    this.code = code;
  }
}
