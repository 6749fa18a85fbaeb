"""Tasks' baselines for RL² (Duan et al. 2016): bandits and tabular MDPs."""
