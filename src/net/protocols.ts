/** Our libp2p protocol ids and gossip topics, one network id each (docs/architecture.md). */
export const protocols = (networkId: string) => ({
  hello: `/bfl/${networkId}/hello/1.0.0`,
  submit: `/bfl/${networkId}/submit/1.0.0`,
  /** The same uploads as pipelined frames on one long-lived stream (net/frames.ts). */
  submitStream: `/bfl/${networkId}/submit-stream/1.0.0`,
  update: `/bfl/${networkId}/update/1.0.0`,
  chain: `/bfl/${networkId}/chain/1.0.0`,
});

export const topics = (networkId: string) => ({
  updates: `/bfl/${networkId}/updates/1`,
  blocks: `/bfl/${networkId}/blocks/1`,
});
