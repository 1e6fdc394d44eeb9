"""The emulator's Face operations, grouped by resource, one mixin class per module.

``groups``, ``persons``, ``faces`` (persisted faces), ``detect`` (detect, identify, verify), ``training``
(train, training status, operations) and ``knobs`` (``/_emulator/*``). Each declares its routes in a
``*_routes()`` method; ``local.face_api.server.Emulator`` inherits every mixin and concatenates the
tables. ``base`` holds what they share (the request, the response, the state they read and write) and
``validation`` the argument checks.
"""
