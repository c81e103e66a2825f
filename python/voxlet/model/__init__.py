"""Model stage: FlowLM, flow head, Mimi and voices, with explicit streaming state."""
