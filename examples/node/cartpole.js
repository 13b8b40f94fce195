'use strict';
// The classic cart-pole (the dynamics of Gymnasium's CartPole-v1) in double precision.

const GRAVITY = 9.8;
const CART_MASS = 1.0;
const POLE_MASS = 0.1;
const TOTAL_MASS = CART_MASS + POLE_MASS;
const POLE_HALF_LENGTH = 0.5;
const POLE_MASS_LENGTH = POLE_MASS * POLE_HALF_LENGTH;
const FORCE_MAGNITUDE = 10.0;
const TAU = 0.02; // seconds per step, explicit Euler
const THETA_THRESHOLD = (12 * 2 * Math.PI) / 360;
const X_THRESHOLD = 2.4;

/** The state after pushing the cart left (action 0) or right (action 1) for one step. */
function step([x, xDot, theta, thetaDot], action) {
  const force = action === 1 ? FORCE_MAGNITUDE : -FORCE_MAGNITUDE;
  const cosTheta = Math.cos(theta);
  const sinTheta = Math.sin(theta);
  const temp = (force + POLE_MASS_LENGTH * (thetaDot * thetaDot) * sinTheta) / TOTAL_MASS;
  const thetaAcc =
    (GRAVITY * sinTheta - cosTheta * temp) /
    (POLE_HALF_LENGTH * (4.0 / 3.0 - (POLE_MASS * (cosTheta * cosTheta)) / TOTAL_MASS));
  const xAcc = temp - (POLE_MASS_LENGTH * thetaAcc * cosTheta) / TOTAL_MASS;
  return [x + TAU * xDot, xDot + TAU * xAcc, theta + TAU * thetaDot, thetaDot + TAU * thetaAcc];
}

/** Whether the cart left the track or the pole fell past 12 degrees: the episode ends. */
function hasFallen([x, , theta]) {
  return Math.abs(x) > X_THRESHOLD || Math.abs(theta) > THETA_THRESHOLD;
}

/** A state drawn uniformly from [-0.05, 0.05]^4, as CartPole-v1 starts. */
function randomState() {
  return Array.from({ length: 4 }, () => Math.random() * 0.1 - 0.05);
}

module.exports = { step, hasFallen, randomState };
