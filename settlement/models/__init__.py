"""Settlement tables (re-exported so Django finds them).

``instructions`` holds obligations, instruction versions, the settled-movement ledger and
payments; ``chains`` each netting key's running head and which versions net which obligations;
``fails`` the fails and their daily penalties; ``breaks`` reconciliation runs and breaks;
``custodian`` the custodian simulator's own state (it is a stand-in for an external
system, so it shares nothing with the internal books but the database).
"""

from settlement.models.breaks import (
    Break,
    BreakCategory,
    BreakComment,
    BreakCorrection,
    BreakStatus,
    ReconciliationRun,
)
from settlement.models.chains import ChainMember, NettingChain
from settlement.models.custodian import (
    CustodianDay,
    CustodianInstruction,
    CustodianMovement,
    CustodianStatement,
    InjectedDiscrepancy,
)
from settlement.models.fails import Fail, FailPenalty
from settlement.models.instructions import (
    Instruction,
    InstructionKind,
    InstructionStatus,
    Obligation,
    Payment,
    SettlementMovement,
)

__all__ = [
    "Break",
    "BreakCategory",
    "BreakComment",
    "BreakCorrection",
    "BreakStatus",
    "ChainMember",
    "CustodianDay",
    "CustodianInstruction",
    "CustodianMovement",
    "CustodianStatement",
    "Fail",
    "FailPenalty",
    "InjectedDiscrepancy",
    "Instruction",
    "InstructionKind",
    "InstructionStatus",
    "NettingChain",
    "Obligation",
    "Payment",
    "ReconciliationRun",
    "SettlementMovement",
]
