"""The [[ entity ]] backend."""
