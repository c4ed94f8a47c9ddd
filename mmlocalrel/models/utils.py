"""Argument and input checks shared by the blocks: errors name the argument and what is allowed."""


def check_choice(owner, name, value, allowed):
    if value not in allowed:
        raise ValueError(f'{owner}: {name} must be one of {tuple(allowed)}, got {value!r}')
    return value


def check_input(owner, x, channels, dims=(2, )):
    """Check ``x`` is (B, channels, *spatial) with ``len(spatial)`` in ``dims``; returns x."""
    spatial = x.dim() - 2
    if spatial not in dims:
        want = ' or '.join(f'{d + 2}-D (B, C{"".join(", " + s for s in "DHW"[3 - d:])})' for d in dims)
        raise ValueError(f'{owner}: expected a {want} input, got shape {tuple(x.shape)}')
    if x.shape[1] != channels:
        raise ValueError(f'{owner}: expected {channels} input channels (in_channels={channels}), '
                         f'got shape {tuple(x.shape)}')
    return x
