'use strict';
// Play CartPole against a served policy over one StreamAct call and print the episode as JSON.
//
//   node play_cartpole.js ADDRESS [--policy cartpole] [--steps 200] [--initial-state '[0.01,0,0.02,0]']
//
// Prints {"policy", "version", "observations" (the float32 values sent), "actions", "return"}.

const { parseArgs } = require('node:util');
const { PolicyClient } = require('./policy_client');
const { hasFallen, randomState, step } = require('./cartpole');

async function play(address, policy, steps, initialState) {
  const client = new PolicyClient(address);
  const session = client.stream(policy);
  const episode = { policy, version: null, observations: [], actions: [], return: 0 };
  try {
    let state = initialState;
    while (episode.actions.length < steps) {
      const observation = state.map(Math.fround); // what a float32 tensor carries
      const reply = await session.step(observation, { episodeStart: episode.actions.length === 0 });
      if (reply.action !== 0 && reply.action !== 1) {
        throw new Error(`policy ${policy} answered ${JSON.stringify(reply.action)}; CartPole needs 0 or 1`);
      }
      episode.observations.push(observation);
      episode.actions.push(reply.action);
      episode.version = reply.version;
      episode.return += 1;
      state = step(state, reply.action);
      if (hasFallen(state)) break;
    }
  } finally {
    session.close();
    client.close();
  }
  return episode;
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      policy: { type: 'string', default: 'cartpole' },
      steps: { type: 'string', default: '200' },
      'initial-state': { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new Error('usage: node play_cartpole.js ADDRESS [--policy NAME] [--steps N]');
  const initialState = values['initial-state'] ? JSON.parse(values['initial-state']) : randomState();
  const episode = await play(positionals[0], values.policy, Number(values.steps), initialState);
  console.log(JSON.stringify(episode));
}

main().catch((error) => {
  console.error(error.message);
  process.exitCode = 1;
});
