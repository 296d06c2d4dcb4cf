"""The imagination-based planner (IBP; Pascanu et al. 2017, *Learning model-based planning from
scratch*): the imagination I, an interaction network (Battaglia et al. 2016) predicting the
Spaceship scene after one external action, its data, trainer and held-out checks (`imagination`);
the planner: manager, controller, memory, strategies and the episode as a stochastic computation
graph (`planner`), its trainer (`train`) and the maze planner (`maze_planner`)."""
from agents.ibp.imagination import (
    Imagination,
    ImaginationConfig,
    InteractionNetwork,
    Prediction,
    Scales,
    TrainConfig,
    Trainer,
    TrainState,
    Transitions,
    aggregate_effects,
    ballistic,
    check_inputs,
    collect_transitions,
    evaluate,
    gradient_agreement,
    make_imagination,
    make_trainer,
    measure_scales,
    random_thrust,
    relation_features,
)
from agents.ibp.maze_planner import (
    MazePlanner,
    MazePlannerConfig,
    MazeRollout,
    make_maze_planner,
    make_maze_trainer,
)
from agents.ibp.planner import (
    ACT,
    LATEST,
    ROOT,
    STRATEGIES,
    Planner,
    PlannerConfig,
    Rollout,
    Trace,
    make_planner,
    simulator_imagination,
    state_features,
)

__all__ = [
    "ACT", "LATEST", "ROOT", "STRATEGIES", "Planner", "PlannerConfig", "Rollout", "Trace",
    "make_planner", "simulator_imagination", "state_features", "MazePlanner", "MazePlannerConfig",
    "MazeRollout", "make_maze_planner", "make_maze_trainer",
    "Imagination", "ImaginationConfig", "InteractionNetwork", "Prediction", "Scales",
    "TrainConfig", "TrainState", "Trainer", "Transitions", "aggregate_effects", "ballistic",
    "check_inputs", "collect_transitions", "evaluate", "gradient_agreement", "make_imagination",
    "make_trainer", "measure_scales", "random_thrust", "relation_features",
]
