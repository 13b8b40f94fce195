"""DQN settings for fast test runs: a tiny network, an evaluation and a checkpoint every 200 steps,
no XLA compile, and no target reward (runs end at max_steps unless a test says otherwise)."""

TINY_DQN = {
    "hidden_sizes": [8],
    "batch_size": 8,
    "buffer_size": 1000,
    "learning_starts": 50,
    "train_freq": 10,
    "gradient_steps": 2,
    "eval_interval": 200,
    "eval_episodes": 2,
    "checkpoint_interval": 200,
    "summary_interval": 100,
    "jit_compile": False,
    "target_reward": None,
}
