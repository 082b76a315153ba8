//! The actor-critic networks A2C (rust/a2c) and PPO (rust/ppo) share, on tch and on candle, as
//! python/tasks/rl/a2c.py `ActorCritic` defines them: separate tanh MLPs for the actor and the
//! critic under PyTorch's names (`actor.0.weight`, `actor_head.bias`, `critic.2.weight`,
//! `critic_head.weight`), loaded from the shared safetensors file. The twins differ only in their
//! updates, which start from `evaluate` here.
pub mod agent;
pub mod candle_net;
pub mod tch_net;
