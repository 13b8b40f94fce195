'use strict';
// Ask a served policy for actions: all observations in one batched Act, then each one alone.
//
//   node act.js ADDRESS POLICY [--mode greedy|stochastic] [--seed N] < observations.json
//
// observations.json is an array of observations (arrays of numbers). Prints
// {"batch": [one action per observation], "single": [the action of each observation sent alone]}.

const fs = require('node:fs');
const { parseArgs } = require('node:util');
const { PolicyClient } = require('./policy_client');

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { mode: { type: 'string', default: 'greedy' }, seed: { type: 'string' } },
  });
  if (positionals.length !== 2) throw new Error('usage: node act.js ADDRESS POLICY [--mode M] [--seed N] < obs.json');
  const [address, policy] = positionals;
  const observations = JSON.parse(fs.readFileSync(0, 'utf8'));
  const options = { mode: `ACTION_MODE_${values.mode.toUpperCase()}`, seed: values.seed };
  const client = new PolicyClient(address);
  try {
    const batch = await client.act(policy, observations, options);
    const single = [];
    for (const observation of observations) single.push(await client.act(policy, observation, options));
    console.log(JSON.stringify({ batch, single }));
  } finally {
    client.close();
  }
}

main().catch((error) => {
  console.error(error.message);
  process.exitCode = 1;
});
