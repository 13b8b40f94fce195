"""Many clients at once: every answer is correct and none fails."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from serving_support import greedy_by_hand, observations

from gymserve.serving import PolicyClient
from gymserve.serving.server.policy_server import PolicyServer

CLIENTS = 32
REQUESTS_PER_CLIENT = 200


def test_32_clients_sending_200_requests_each_all_get_correct_actions(server: PolicyServer):
    def run_client(index: int) -> int:
        batches = observations(REQUESTS_PER_CLIENT * 2, seed=100 + index)
        correct = 0
        with PolicyClient(server.address, timeout=60) as client:
            for request in range(REQUESTS_PER_CLIENT):
                # alternate single observations and batches of 2, and both versions
                version = 1 + request % 2
                sent = batches[2 * request] if request % 3 else batches[2 * request : 2 * request + 2]
                result = client.act_with_details(sent, "linear", version=version)
                assert result.policy_version == version
                np.testing.assert_array_equal(result.actions, greedy_by_hand(sent, version))
                correct += 1
        return correct

    with ThreadPoolExecutor(CLIENTS) as pool:
        answered = list(pool.map(run_client, range(CLIENTS)))
    assert answered == [REQUESTS_PER_CLIENT] * CLIENTS
