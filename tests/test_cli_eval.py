"""`gymserve eval`'s heading says how the actions were picked."""

from gymserve.cli import main


def test_random_actions_are_not_called_greedy(capsys):
    assert main(["eval", "--env", "gymserve/CartPole-v1", "--policy", "random", "--episodes", "2"]) == 0
    heading = capsys.readouterr().out.splitlines()[0]
    assert heading == "random (uniform random actions) on gymserve/CartPole-v1, 2 episodes"
