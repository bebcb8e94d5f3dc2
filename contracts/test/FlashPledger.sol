// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.28;

import {ICampaign} from "../interfaces/ICampaign.sol";

/// @title FlashPledger
/// @notice Test-only attacker. It tries to touch the count without committing to it: a
///         pledge and a withdrawal in one transaction (a "flash pledge"), or a keeper
///         release relayed through a contract, or a batch of arbitrary calls.
/// @dev With `keepIfRevealed` false, a flash pledge that fires the reveal reverts as a
///      whole (the withdrawal is refused after the reveal): the attacker either stays a
///      member or nothing happened. With it true, the refused withdrawal is swallowed and
///      the attacker stays a live member of the revealed campaign.
contract FlashPledger {
    // ─── Errors ─────────────────────────────────────────────────────────────────────

    /// @notice Only the deployer may drive the attacker.
    error FlashPledgerNotOwner(address caller);
    /// @notice Call `index` of a batch failed with `reason`.
    error FlashPledgerCallFailed(uint256 index, bytes reason);

    // ─── Events ─────────────────────────────────────────────────────────────────────

    /// @notice The flash pledge's withdrawal was refused and swallowed.
    /// @param reason The campaign's revert data.
    event WithdrawRefused(bytes reason);

    // ─── Immutables ─────────────────────────────────────────────────────────────────

    /// @notice The account that deployed the attacker.
    address public immutable owner;

    // ─── Constructor ────────────────────────────────────────────────────────────────

    /// @notice Deploys the attacker; any value sent funds its pledges.
    constructor() payable {
        owner = msg.sender;
    }

    // ─── External ───────────────────────────────────────────────────────────────────

    /// @notice Pledges to `campaign` and withdraws again in the same transaction.
    /// @param campaign The campaign under attack.
    /// @param envelope Sealed bytes for the pledge.
    /// @param memberKey A compressed member key for the pledge.
    /// @param value The deposit, paid out of this contract's balance.
    /// @param keepIfRevealed Whether a refused withdrawal is swallowed (else it reverts all).
    function flash(
        ICampaign campaign,
        bytes calldata envelope,
        bytes calldata memberKey,
        uint256 value,
        bool keepIfRevealed
    ) external {
        _onlyOwner();
        campaign.pledge{value: value}(envelope, memberKey);
        if (keepIfRevealed) {
            try campaign.withdraw() {}
            catch (bytes memory reason) {
                emit WithdrawRefused(reason);
            }
        } else {
            campaign.withdraw();
        }
    }

    /// @notice Makes `calls` in order from this contract's address; any failure reverts
    ///         the whole batch with the failing call's index and revert data.
    /// @param targets The addresses to call.
    /// @param data The calldata of each call.
    /// @param values The wei each call carries, out of this contract's balance.
    function batch(address[] calldata targets, bytes[] calldata data, uint256[] calldata values) external {
        _onlyOwner();
        for (uint256 i = 0; i < targets.length; ++i) {
            (bool ok, bytes memory result) = targets[i].call{value: values[i]}(data[i]);
            if (!ok) revert FlashPledgerCallFailed(i, result);
        }
    }

    /// @notice Takes refunds.
    receive() external payable {}

    // ─── Internal ───────────────────────────────────────────────────────────────────

    function _onlyOwner() private view {
        if (msg.sender != owner) revert FlashPledgerNotOwner(msg.sender);
    }
}
