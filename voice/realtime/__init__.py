"""The Realtime protocol layer: plain asyncio, no Django imports, unit-testable on its own.

The gateway consumer (voice.consumers) hands it settings and callbacks; it speaks the GA Realtime
protocol upstream and Koe's small browser protocol downstream.
"""
