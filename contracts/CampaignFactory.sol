// SPDX-License-Identifier: AGPL-3.0-or-later
pragma solidity ^0.8.28;

import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {Campaign} from "./Campaign.sol";
import {ICampaign} from "./interfaces/ICampaign.sol";

/// @title CampaignFactory
/// @notice Creates Spartacus campaigns as EIP-1167 minimal proxies of one implementation,
///         each initialised in the transaction that creates it.
/// @dev The creator is `_msgSender()` (ERC-2771): an organizer can create through the deployment's
///      trusted forwarder with a key that holds no ether, and that key's address is the creator.
// Every wei sent to createCampaign leaves in the same call: CREATE2 gives it to the new
// campaign (in assembly, which Slither's locked-ether detector does not follow).
// slither-disable-next-line locked-ether
contract CampaignFactory is ERC2771Context {
    // ─── Errors ─────────────────────────────────────────────────────────────────────

    /// @notice The clone could not be deployed (this creator already used this salt).
    error FactoryCloneFailed(address creator, bytes32 salt);

    // ─── Events ─────────────────────────────────────────────────────────────────────

    /// @notice A campaign was created. Its texts and keeper keys live here, not in storage.
    /// @param campaign The new campaign's address.
    /// @param creator The address that created it (its record is pledge 0).
    /// @param config Everything the creator chose.
    event CampaignCreated(address indexed campaign, address indexed creator, ICampaign.Config config);

    // ─── Immutables ─────────────────────────────────────────────────────────────────

    /// @notice The campaign implementation every clone delegates to.
    address public immutable implementation;

    /// @notice The block the factory was deployed in: every scan of its events starts here.
    uint256 public immutable deployedAt;

    // ─── Constructor ────────────────────────────────────────────────────────────────

    /// @notice Deploys the implementation, which can never be initialised itself.
    /// @param trustedForwarder The deployment's one ERC-2771 forwarder, trusted by the factory and
    ///        by every campaign (the implementation keeps it as an immutable its clones share).
    constructor(address trustedForwarder) ERC2771Context(trustedForwarder) {
        implementation = address(new Campaign(trustedForwarder));
        deployedAt = block.number;
    }

    // ─── External ───────────────────────────────────────────────────────────────────

    /// @notice Creates a campaign and records the creator's sealed record as pledge 0.
    /// @dev The address is known before the call (`predictCampaign`), so the creator can
    ///      bind its sealed record to it. The salt is scoped to the creator: nobody can take
    ///      an address another creator is sealing for.
    /// @param config Everything the creator chooses (see `ICampaign.Config`).
    /// @param salt Any value; one campaign per (creator, salt).
    /// @param envelope The creator's sealed record: identity and contact (the instructions are
    ///        sealed apart, in `config.instructions`).
    /// @param memberKey The creator's member public key (33 bytes, compressed).
    /// @return campaign The new campaign's address.
    function createCampaign(
        ICampaign.Config calldata config,
        bytes32 salt,
        bytes calldata envelope,
        bytes calldata memberKey
    ) external payable returns (address campaign) {
        address creator = _msgSender();
        // The deposit travels with the creation itself: cheaper than a call with value.
        campaign = _clone(_scopedSalt(creator, salt), msg.value);
        if (campaign == address(0)) revert FactoryCloneFailed(creator, salt);
        ICampaign(campaign).initialize(creator, msg.value, config, envelope, memberKey);
        emit CampaignCreated(campaign, creator, config);
    }

    // ─── Views ──────────────────────────────────────────────────────────────────────

    /// @notice The address `createCampaign` will give `creator` for `salt`.
    function predictCampaign(address creator, bytes32 salt) external view returns (address) {
        bytes32 codeHash = keccak256(_cloneCode());
        bytes32 h = keccak256(abi.encodePacked(bytes1(0xff), address(this), _scopedSalt(creator, salt), codeHash));
        return address(uint160(uint256(h)));
    }

    // ─── Internal ───────────────────────────────────────────────────────────────────

    function _scopedSalt(address creator, bytes32 salt) private pure returns (bytes32) {
        return keccak256(abi.encode(creator, salt));
    }

    /// @dev EIP-1167 creation code: a 10-byte constructor, then the 45-byte runtime that
    ///      delegates every call to `implementation`.
    function _cloneCode() private view returns (bytes memory) {
        return abi.encodePacked(
            hex"3d602d80600a3d3981f3363d3d373d3d3d363d73", implementation, hex"5af43d82803e903d91602b57fd5bf3"
        );
    }

    function _clone(bytes32 salt, uint256 value) private returns (address instance) {
        bytes memory code = _cloneCode();
        assembly ("memory-safe") {
            instance := create2(value, add(code, 0x20), mload(code), salt)
        }
    }
}
