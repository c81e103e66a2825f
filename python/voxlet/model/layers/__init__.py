"""Building blocks shared by FlowLM and Mimi. Module attribute names follow the checkpoint keys."""
